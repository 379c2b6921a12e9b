# What a remote command does to the running telelogger `t` (commands.CommandHandler checks the
# signature and the argument types first). Imported with the first command message.
from core.compat import const
from core.errors import lookup
from telelogger.tasks import unload

# (set_interval target, the Telelogger attribute it sets): const() pairs, no name on the heap
_TARGETS = const((("intervals.battery_ms", "battery_ms"), ("intervals.signal_ms", "signal_ms"),
                  ("intervals.status_ms", "status_ms"), ("gnss.interval_ms", "gnss_ms"),
                  ("batch.max_age_ms", "batch_age_ms")))


def limits(target):
    """(lo, hi) ms the config allows for `target` (telelogger/schema.py: one home for the limits)."""
    from telelogger import schema

    try:
        if target.startswith("obd.pids."):
            return schema.PID_INTERVAL
        spec = schema.SCHEMA[target]
        return spec[1], spec[2]
    finally:
        unload("schema")


def handlers(t):
    """The commands a remote may run: name -> async fn(args dict) -> JSON-able result."""

    async def ping(args=None):
        return {"pong": True, "uptime_ms": t.now()}

    async def stat(args=None):
        return lookup("telelogger.statusmsg", "status", t)

    async def set_interval(args):
        target = args["target"]
        ms = int(args["ms"])
        attrs = dict(_TARGETS)
        if not (target.startswith("obd.pids.") or target in attrs):
            raise ValueError("unknown interval %s" % target)
        lo, hi = limits(target)
        if ms < lo or (hi is not None and ms > hi):
            raise ValueError("args.ms: %s takes %s..%s ms (as in the config), got %d" % (target, lo, hi, ms))
        if target.startswith("obd.pids."):
            pid = int(target[9:], 16)
            for p in t.pids:
                if p.pid == pid:
                    p.interval_ms = ms
                    p.due_ms = t.now()
                    break
            else:  # a PID not configured yet: sampled from now on
                from telelogger.sampler import Pid

                t.pids.append(Pid(pid, ms, t.now()))
        else:
            setattr(t, attrs[target], ms)
        return {"target": target, "ms": ms}

    async def flush(args=None):
        t.flush_req = True
        return {"queue": t.store.pending()}

    async def reboot(args=None):
        t.reboot_req = True
        return {"rebooting": True, "delay_ms": (args or {}).get("delay_ms", 0)}

    def rare(mod, fn):
        # a command whose code is imported per call and dropped after (never resident): config_get/
        # config_set (telelogger/cfgcmd.py), dtc_read/dtc_clear (telelogger/dtccmd.py), ota_*
        # (telelogger/otacmd.py: it drops otaboot, and telelogger.ota when no update is staged; a
        # refusal raises ValueError(reason), the error reply; ota_commit sets t.reboot_req: cmdrun.run
        # reboots once the reply is sent)
        async def run(args):
            m = __import__("telelogger." + mod, None, None, ("_",))
            try:
                return await getattr(m, fn)(t, args)
            finally:
                m = None
                unload(mod)

        return run

    return {"ping": ping, "status": stat, "set_interval": set_interval, "flush": flush, "reboot": reboot,
            "config_get": rare("cfgcmd", "get"), "config_set": rare("cfgcmd", "put"),
            "dtc_read": rare("dtccmd", "read"), "dtc_clear": rare("dtccmd", "clear"),
            "ota_begin": rare("otacmd", "ota_begin"), "ota_status": rare("otacmd", "ota_status"),
            "ota_commit": rare("otacmd", "ota_commit"), "ota_abort": rare("otacmd", "ota_abort")}
