# The status message and what a status interval does (telelogger/sampler.py's poll_task imports this
# per interval and drops it again; status.status / publish_status / reboot forward here), and the
# reboot of commands and of a build on trial. Not resident: only the watchdog and the task's timer are.
import json

from telelogger.tasks import K_BATTERY, K_SIGNAL, RUN, acall, unload


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
    st = json.dumps(st).encode()  # (the dict is let go of before the publish's AT exchanges)
    async with t.lock:
        await t.pub.publish(t.t_status, st, 1)
    t.counters["status"] += 1


async def tick(t, first):
    """One status interval of sampler.poll_task -> `first` for the next one: the status published
    (RUN, connected); after the first acked one of this boot the build is marked healthy (OTA trial);
    a build on trial not healthy in time reboots."""
    if t.state == RUN and t.pub.connected():
        try:
            await publish_status(t)
            if first:
                # the build connected and published a status (PUBACK): otaboot.mark_healthy() (imported,
                # called, dropped) ends a trial; t.ota_info is read again for the status. A build known not to
                # be on trial (this boot's otaboot.info, loopinit.ota_info) has nothing to end: otaboot is not
                # imported (the first status was the run's highest heap peak with it)
                first = False
                i = t.ota_info
                if i is None or i.get("trial"):
                    mark_healthy(t)
        except MemoryError:
            raise
        except Exception as e:
            t.note("debug", "status not published: %s", e)
    if t.ota_trial_ms is not None and t.now() >= t.ota_trial_ms:  # on trial, never healthy: reset
        t.ota_trial_ms = None
        t.note("error", "ota: build on trial not healthy within %d s: resetting", t.now() // 1000)
        t.reboot_req = True
        await reboot(t)
    return first


def mark_healthy(t):
    """tick's mark of the build as healthy (a function of its own: each one's bytecode is one allocation)."""
    from telelogger import otaboot

    root = getattr(t, "ota_root", "/")
    try:
        if otaboot.mark_healthy(root):
            t.note("info", "ota: version %d marked healthy", t.ota_info["ver"] if t.ota_info else 0)
        t.ota_trial_ms = None
        t.ota_info = otaboot.info(root)
    except OSError as e:
        t.note("error", "ota: mark_healthy: %s", e)
    finally:
        otaboot = None
        unload("otaboot")


async def reboot(t):
    """The reboot of a `reboot` or `ota_commit` command (after its reply, telelogger/cmdrun.py) and of
    a build on trial that did not get healthy: the records of the sync window to flash, disconnect,
    board reset."""
    t.note("warn", "reboot requested")
    try:
        t.build_record()  # the records of the sync window go to flash first
    except Exception as e:  # flash full: they are lost with the reboot, say so
        t.note("warn", "before reboot: %d records not stored: %s", len(t.unsaved), e)
    try:
        await t.pub.disconnect()
    except Exception:
        pass
    if t.board is not None and hasattr(t.board, "reset"):
        await acall(t.board.reset)
