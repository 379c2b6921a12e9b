# Status publishing, remote commands (wired to commands.CommandHandler) and watchdog feeding.
import json

from telelogger.tasks import RUN, acall, isawait, unload
from telelogger.sampler import K_BATTERY, K_SIGNAL

# A task silent for longer than this stops the watchdog feeding (the board's WDT then resets).
# The sender may legitimately sit in CellularPublisher.connect()'s bounded retries for minutes.
BEAT_STALE_MS = {"record": 120000, "standby": 120000, "send": 900000}


def status(t):
    c = t.counters
    return {
        "id": t.device_id, "state": t.state, "standby": t.state != RUN, "uptime_ms": t.now(),
        "queue": t.store.pending(), "dropped": getattr(t.store, "dropped", 0),
        "unsaved_dropped": c.get("unsaved_dropped", 0), "store_errors": c.get("store_errors", 0),
        "records": c["records"], "sent": c["sent"], "reconnects": c["reconnects"],
        "send_errors": c["send_errors"], "obd_errors": c["obd_errors"],
        "signal": t.last.get(K_SIGNAL), "voltage": t.last.get(K_BATTERY),
        "utc": t.utc_offset_ms is not None,
        "pid_errors": dict(("%02X" % p.pid, p.errors) for p in t.pids if p.errors),
        "mem_errors": c["mem_errors"], "last_reset": t.last_reset,
        "vin": getattr(t, "vin", None), "cfg": getattr(t, "cfg_note", None),  # vehicle.py, cfgcmd.py
    }


async def publish_status(t, extra=None):
    st = status(t)
    if extra:
        st.update(extra)
    async with t.lock:
        await t.pub.publish(t.t_status, json.dumps(st).encode(), 1)
    t.counters["status"] += 1


async def status_task(t):
    while True:
        await t.sleep(t.status_ms)
        if t.state == RUN and t.pub.connected():
            try:
                await publish_status(t)
            except MemoryError:
                raise
            except Exception as e:
                t.note("debug", "status: %s", e)


async def vehicle_task(t):
    """VIN and trouble codes once the ECU answers (telelogger/vehicle.py, imported per check, dropped)."""
    ms = 5000
    while True:
        await t.sleep(ms)
        ms = 5000
        if t.counters["obd_reads"]:
            from telelogger import vehicle

            ms = await vehicle.check(t)
            del vehicle
            unload("vehicle")


# ---- commands (the handlers: telelogger/cmdhandlers.py, imported with the first command) ----
# Refused messages (unauthenticated, replayed, malformed, or commands off) get at most one reply per
# REFUSED_REPLY_MS; the others are dropped silently (counted: cmds_unanswered), so that anyone able
# to publish on the cmd topic cannot make the device publish a (signed) reply per message.
REFUSED_REPLY_MS = 10000


async def cmd_task(t):
    while True:
        await t.cmd_ev.wait()
        t.cmd_ev.clear()
        while t.cmdq:
            payload = t.cmdq.pop(0)
            t.counters["cmds"] += 1
            h = t.command_handler()
            refused = True
            if h is None:
                reply = b'{"ok":false,"error":"commands disabled (commands.enabled is false or no secrets.hmac_key)"}'
            else:
                stats = getattr(h, "stats", None)  # CommandHandler counts what it rejects
                before = stats["rejected"] if stats else None
                try:
                    reply = h.handle(payload)
                    if isawait(reply):
                        reply = await reply
                    refused = stats is not None and stats["rejected"] != before
                except MemoryError:
                    raise
                except Exception as e:
                    reply = json.dumps({"ok": False, "error": str(e)}).encode()
            if refused:
                now = t.now()
                if t.refused_reply_ms is not None and now - t.refused_reply_ms < REFUSED_REPLY_MS:
                    t.counters["cmds_unanswered"] += 1
                    continue
                t.refused_reply_ms = now
            try:
                async with t.lock:
                    await t.pub.publish(t.t_reply, reply, 1)
            except MemoryError:
                raise
            except Exception as e:
                t.note("warn", "reply not sent: %s", e)
            if t.reboot_req:
                await reboot(t)


async def reboot(t):
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


# ---- watchdog ----
async def wdt_task(t):
    while True:
        now = t.now()
        fresh = True
        if t.state == RUN:
            for name in t.beats:
                if now - t.beats[name] > BEAT_STALE_MS.get(name, 300000):
                    fresh = False
                    t.note("error", "task %s silent for %d ms: letting the watchdog fire", name, now - t.beats[name])
        if fresh and t.wdt is not None:
            t.wdt.feed()
            t.counters["wdt_feeds"] += 1
        await t.sleep(t.wdt_ms)
