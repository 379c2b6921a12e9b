# The status message and what a status interval does (telelogger/sampler.py's poll_task imports this
# per interval and drops it again; status.status / publish_status forward here). Not resident: only the
# watchdog and the task's timer are. The end of an OTA trial and the reboot are telelogger/reboot.py's,
# imported only on trial or for a reboot: a status interval does not carry their code.
import json

from core.errors import lookup
from telelogger.tasks import K_BATTERY, K_SIGNAL, RUN


# (the step helpers here bear names the firmware interns anyway: a new name would stay in RAM for good)
def counters(t):
    c = t.counters
    return {
        "id": t.device_id, "state": t.state, "standby": t.state != RUN, "uptime_ms": t.now(),
        "queue": t.store.pending(), "dropped": getattr(t.store, "dropped", 0),
        "unsaved_dropped": c.get("unsaved_dropped", 0), "store_errors": c.get("store_errors", 0),
        "records": c["records"], "sent": c["sent"], "reconnects": c["reconnects"],
        "send_errors": c["send_errors"], "obd_errors": c["obd_errors"],
    }


def status(t):
    """The status message's members (in two dicts: each function's bytecode is one allocation)."""
    st = counters(t)
    st.update({
        "signal": t.last.get(K_SIGNAL), "voltage": t.last.get(K_BATTERY),
        "utc": t.utc_offset_ms is not None,
        "pid_errors": dict(("%02X" % p.pid, p.errors) for p in t.pids if p.errors),
        "mem_errors": t.counters["mem_errors"], "last_reset": t.last_reset,
        "vin": getattr(t, "vin", None), "cfg": getattr(t, "cfg_note", None),  # vehicle.py, cfgcmd.py
        "ota": getattr(t, "ota_info", None),  # otaboot.info(): {ver, slot, trial, failed} (loopinit.ota_info, healthy())
    })
    return st


async def publish_status(t, data=None):
    """Publishes status(t), updated with the dict `data` when given (standby_io: standby, heartbeat)."""
    st = status(t)
    if data:
        st.update(data)
    st = json.dumps(st)  # (the dict is let go of before the publish's AT exchanges)
    try:  # MicroPython: the text's UTF-8 bytes as they are: one block of its length, not a second during an encode
        st = memoryview(st)  # pyright: ignore[reportArgumentType] - a str is a buffer on MicroPython
    except TypeError:  # CPython (a str has no buffer)
        st = st.encode()
    async with t.lock:
        await t.pub.publish(t.t_status, st, 1)
    t.counters["status"] += 1


async def tick(t, first):
    """One status interval of sampler.poll_task -> `first` for the next one: the status published
    (RUN, connected); after the first acked one of this boot a build on trial is marked healthy; a
    build on trial not healthy in time reboots (those two: telelogger/reboot.py, imported for them)."""
    if t.state == RUN and t.pub.connected():
        try:
            await publish_status(t)
            if first:
                # the build connected and published a status (PUBACK): reboot.healthy (otaboot.mark_healthy) ends
                # a trial. A build known not to be on trial (this boot's otaboot.info, loopinit.ota_info) has
                # nothing to end: neither module is imported (the first status was the run's highest heap peak
                # with otaboot)
                first = False
                i = t.ota_info
                if i is None or i.get("trial"):
                    await lookup(__name__.replace("statusmsg", "reboot"), "healthy", t)
        except MemoryError:
            raise
        except Exception as e:
            t.note("debug", "status not published: %s", e)
    if t.ota_trial_ms is not None and t.now() >= t.ota_trial_ms:  # on trial, never healthy: reset
        await lookup(__name__.replace("statusmsg", "reboot"), "expired", t)  # (telelogger.reboot: no str constant)
    return first
