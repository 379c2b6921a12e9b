# The OBD link's (re)initialisation for the sampler (sampler.obd_task): ATZ and the protocol, then
# which of the configured PIDs the vehicle supports. Imported per initialisation (at boot, after
# rounds without an answer, after standby) and forgotten again.
from telelogger.tasks import acall


async def init(t):
    t.counters["obd_inits"] += 1
    await acall(t.obd.init)
    ok = getattr(t.obd, "is_supported", None)  # obdii.obd.Obd: bitmap from PIDs 00/20/40..
    if ok is None:
        sup = getattr(t.obd, "supported", None)
        if callable(sup):
            sup = await acall(sup)
        if not sup:
            return
        ok = sup.__contains__
    keep = [p for p in t.pids if ok(p.pid)]
    if not keep:
        t.note("warn", "vehicle reports none of the configured PIDs supported: reading them all anyway")
        return
    if len(keep) < len(t.pids):
        t.note("info", "PIDs not supported by this vehicle: %s", ["%02X" % p.pid for p in t.pids if not ok(p.pid)])
    t.pids = keep
