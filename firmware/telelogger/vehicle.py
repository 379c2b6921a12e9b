# The vehicle's own health (issue 14 §3): the VIN, read once per boot (retried at each check while
# the ECU gave none) and carried in the status (t.vin); the stored (mode 03) and pending (mode 07)
# trouble codes, read when the ECU first answers and then every obd.dtc_interval_s, published as a
# "dtc" event on <prefix>/<id>/event whenever they differ from the last event of this boot (the first
# read of a boot is always published). Commands dtc_read / dtc_clear (FORMAT.md "Vehicle codes").
# Imported per check by status.vehicle_task and per command by cmdhandlers, and dropped after: the
# state lives on the telelogger (t.vin, t.dtc), never in this module.
import json

from telelogger.tasks import RUN

VIN_RETRY_MS = 60000  # first retry of a VIN the ECU did not give; doubles up to the DTC interval
UNSENT_RETRY_MS = 30000  # an event that could not be published is tried again this soon
CLEAR_HINT = ('dtc_clear erases the stored and pending codes, freeze frames and readiness monitors of the ECU: '
              'send args {"confirm": true}')


def _state(t):
    d = getattr(t, "dtc", None)
    if d is None:
        d = t.dtc = {"due": 0, "tries": 0, "stored": None, "pending": None, "sent": None}
        if getattr(t, "vin", None) is None:
            t.vin = None
    return d


def _interval_ms(t):
    return t.cfg["obd"].get("dtc_interval_s", 600) * 1000


def _obd(t):
    if t.obd is None or not hasattr(t.obd, "dtcs"):
        raise ValueError("no OBD link (obd.enabled is false or the board has no co-processor)")
    return t.obd


async def _vin(t, d):
    if t.vin is not None:
        return
    try:
        v = await _obd(t).vin()
    except MemoryError:
        raise
    except Exception as e:  # no answer (ECU off, mode 09 unsupported): retried later
        d["tries"] += 1
        t.note("debug", "VIN: %s", e)
        return
    t.vin = v


async def _codes(t, d):
    """Reads both lists into d; publishes an event when they changed. Raises on a link error."""
    o = _obd(t)
    d["stored"] = await o.dtcs(3)
    d["pending"] = await o.dtcs(7)
    d["at"] = (t.utc_ms(), t.now())  # when read (an event published later says so)
    d["due"] = t.now() + _interval_ms(t)
    await _publish(t, d)


def event(t, d):
    """The dtc event message body (FORMAT.md "Events")."""
    return {"event": "dtc", "id": t.device_id, "ts": d["at"][0], "boot": t.boot, "uptime_ms": d["at"][1],
            "vin": t.vin, "stored": d["stored"], "pending": d["pending"]}


async def _publish(t, d):
    now = [d["stored"], d["pending"]]
    if d["sent"] == now or not t.pub.connected():
        return
    topic = t.t_status[:-6] + "event"  # <prefix>/<id>/event
    try:
        async with t.lock:
            await t.pub.publish(topic, json.dumps(event(t, d)).encode(), 1)
    except MemoryError:
        raise
    except Exception as e:  # kept: tried again at the next check
        t.note("warn", "dtc event not sent: %s", e)
        return
    d["sent"] = now


async def check(t):
    """One periodic check (the ECU answers): VIN while unknown, codes when due, an unsent event.
    -> ms until the next check."""
    d = _state(t)
    iv = _interval_ms(t)
    if t.state != RUN:
        return iv
    await _vin(t, d)
    if t.now() >= d["due"]:
        try:
            await _codes(t, d)
        except MemoryError:
            raise
        except Exception as e:
            t.note("debug", "DTCs: %s", e)
            d["due"] = t.now() + min(iv, VIN_RETRY_MS)
    else:
        await _publish(t, d)
    wait = d["due"] - t.now()
    if t.vin is None:
        wait = min(wait, VIN_RETRY_MS << min(d["tries"] - 1 if d["tries"] else 0, 6))
    if d["stored"] is not None and d["sent"] != [d["stored"], d["pending"]]:
        wait = min(wait, UNSENT_RETRY_MS)
    return max(1000, wait)


def _result(t, d):
    return {"vin": t.vin, "stored": d["stored"], "pending": d["pending"]}


async def read(t, args):
    """dtc_read: reads the codes (and a missing VIN) now -> {"vin", "stored", "pending"}."""
    d = _state(t)
    await _vin(t, d)
    await _codes(t, d)
    return _result(t, d)


async def clear(t, args):
    """dtc_clear {"confirm": true}: OBD mode 04, then the codes read again -> {"cleared": true, ...}."""
    if args.get("confirm") is not True:
        raise ValueError("refused: " + CLEAR_HINT)
    o = _obd(t)
    lines = await o.link.query("04", o.long_ms)
    ok = False
    for ln in lines:
        if ln.replace(" ", "").startswith("44"):
            ok = True
    if not ok:
        raise ValueError("the ECU did not confirm mode 04 (reply %s)" % json.dumps("|".join(lines)))
    d = _state(t)
    await _codes(t, d)
    r = _result(t, d)
    r["cleared"] = True
    return r
