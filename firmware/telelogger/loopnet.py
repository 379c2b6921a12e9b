# The Telelogger's operations that run per standby flush, per incoming message or per refused time,
# not per sample (telelogger/loop.py is what runs every sample; connect stays there: the first one is
# the boot's peak, with the bring-up's modules in flight, and this module would add to it): reached as methods through
# Telelogger.__getattr__, which imports this module for the call and forgets it again, so none of
# this code stays on the heap between calls. Each function takes the Telelogger first.
import asyncio

from core.compat import const
from telelogger.tasks import guarded, unload

# OTA chunk messages queued for msg_task: beyond this they are dropped (counted: ota_dropped)
_OTAQ_MAX = const(3)


async def drain(t, ms):
    """Send what we can within ms (before sleeping, at heartbeats, the host runner's end)."""
    t0 = t.now()
    while t.store.pending() and t.now() - t0 < ms:
        try:
            if not t.pub.connected():
                await t.connect()
            await t.send_batch()
        except MemoryError:
            raise
        except Exception as e:
            t.note("warn", "drain: sending failed: %s", e)
            await t.sleep(t.backoff_min_ms)


def on_message(t, topic, payload):
    """The publisher's callback (from the modem's reader task: it queues, it does not wait): a command
    (t.t_cmd) or an OTA chunk (t.t_ota) queued for msg_task, which is started when none runs."""
    if topic == t.t_cmd and len(t.cmdq) < 4:
        t.cmdq.append(bytes(payload))
        if t.cmd_run is None:
            t.cmd_run = asyncio.create_task(guarded(t, "cmd", t.msg_task))
    elif topic == t.t_ota and t.t_ota:
        if len(t.otaq) >= _OTAQ_MAX:
            t.counters["ota_dropped"] += 1  # QoS 1: the sender re-sends what ota_status lists
            return
        t.otaq.append(bytes(payload))
        if t.ota_run is None:
            t.ota_run = asyncio.create_task(guarded(t, "ota", t.msg_task, True))


async def msg_task(t, ota=False):
    """Works off what on_message queued, then ends (on_message starts it when a message arrives, no
    task waits meanwhile): the commands (t.cmdq, telelogger/cmdrun.py) or with ota the OTA chunks
    (t.otaq, telelogger/ota.py). The module is imported for them; its run() says whether it may be
    forgotten again (cmdrun: always; ota: when no update is in progress, ota.idle)."""
    if ota:
        from telelogger import ota as m
    else:
        from telelogger import cmdrun as m
    if await m.run(t):
        del m
        unload("ota" if ota else "cmdrun")
    if ota:  # not after a MemoryError: tasks.guarded runs this task again
        t.ota_run = None
    else:
        t.cmd_run = None


def refuse_utc(t, utc_ms, apart_ms, gnss):
    """Telelogger.set_utc refused `utc_ms` (from GNSS when gnss, else the network's): the warning, once
    per source (set_utc counts). apart_ms: how far a GNSS time is from the network's, None for a time
    outside the years set_utc believes (telelogger/loop.py _UTC_MIN_MS, _UTC_MAX_MS)."""
    why = ("%d s from the network's time" % (apart_ms // 1000) if apart_ms is not None
           else "outside 2024..2099 (a GPS week rollover?)")
    t.note("warn", "%s time %d s (UTC) refused: %s; %s", ("network", "GNSS")[gnss], utc_ms // 1000, why,
           "UTC stays unknown" if t.utc_offset_ms is None else "UTC stays as it was")
