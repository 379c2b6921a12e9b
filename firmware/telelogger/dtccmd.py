# The commands dtc_read and dtc_clear (FORMAT.md "Commands"): telelogger/vehicle.py's steps, run for a
# command. Imported per command by cmdhandlers and dropped after, with vehicle.py: the periodic check
# (sampler.obd_task) loads vehicle.py alone, without this code.
import json

from telelogger.tasks import unload


async def read(t, args):
    """dtc_read: reads the codes (and a missing VIN) now -> {"vin", "stored", "pending"}."""
    from telelogger import vehicle as v

    try:
        d, o = v.state(t)
        await v.read(t, d, o)
        return v.result(t, d)
    finally:
        v = None
        unload("vehicle")


async def clear(t, args):
    """dtc_clear {"confirm": true}: OBD mode 04, then the codes read again -> {"cleared": true, ...}."""
    if args.get("confirm") is not True:
        raise ValueError('refused: dtc_clear erases the stored and pending codes, freeze frames and readiness '
                         'monitors of the ECU: send args {"confirm": true}')
    from telelogger import vehicle as v

    try:
        d, o = v.state(t)
        if o is not None:
            # mode 04; its positive answer starts 44 (the mode + 0x40). "%02X": a format the run has (no new names)
            lines = await o.link.query("%02X" % 4, o.long_ms)
            if not [1 for ln in lines if ln.replace(" ", "").startswith("%02X" % (4 + 0x40))]:
                raise ValueError("the ECU did not confirm mode 04 (reply %s)" % json.dumps("|".join(lines)))
        await v.read(t, d, o)
        r = v.result(t, d)
        r["cleared"] = True
        return r
    finally:
        v = None
        unload("vehicle")
