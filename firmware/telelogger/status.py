# Watchdog feeding, and the status's names (remote commands: Telelogger.msg_task and telelogger/cmdrun.py).
# Resident: the watchdog task's loop only. What a status interval does (the status message, the OTA
# trial's healthy mark, the reboot) is telelogger/statusmsg.py, imported per interval by the poll task
# (telelogger/sampler.py poll_task) and dropped again; status, publish_status and reboot stay
# importable from here (forwarded, __getattr__ below).
from core.compat import const
from telelogger.tasks import RUN, unload

_T_TASK_SILENT = const(20)  # the log text (telelogger/texts.py, looked up when written: Telelogger.note)

# A task silent for longer than this stops the watchdog feeding (the board's WDT then resets): the
# record task (which also runs the standby rules and the GNSS samples) 120 s, the sender 900 s (it may legitimately sit in
# CellularPublisher.connect()'s bounded retries for minutes), any other task 300 s (wdt_task).


def __getattr__(name):
    """status.status, publish_status, reboot: telelogger/statusmsg.py's, imported for the caller and
    dropped from sys.modules again (the function keeps what it needs for as long as the caller does)."""
    if name not in "status publish_status reboot".split():  # (one str: a tuple holds a str per name)
        raise AttributeError(name)
    from telelogger import statusmsg

    try:
        return getattr(statusmsg, name)
    finally:
        statusmsg = None
        unload("statusmsg")


# ---- watchdog ----
async def wdt_task(t):
    while True:
        now = t.now()
        fresh = True
        if t.state == RUN:
            for name in t.beats:
                if now - t.beats[name] > (900000 if name == "send" else 120000 if name == "record" else 300000):  # the limits above
                    fresh = False
                    t.note("error", _T_TASK_SILENT, name, now - t.beats[name])
        if fresh and t.wdt is not None:
            t.wdt.feed()
            t.counters["wdt_feeds"] += 1
        await t.sleep(t.wdt_ms)
