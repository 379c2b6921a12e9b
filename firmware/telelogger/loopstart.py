# Starting the Telelogger's tasks (Telelogger.start, .run through its __getattr__): imported for the
# call and forgotten again. Apart from telelogger/loopinit.py (the constructor's body): the start
# comes after the cellular publisher's build, on a heap that boot has fragmented, and needs only this.
import asyncio

from telelogger.tasks import guarded, wdt_task


def start(t):
    """Telelogger.start: the tasks, each run by tasks.guarded (a MemoryError restarts it). Few: each
    costs ~460 bytes while it runs, so the vehicle checks run in the OBD task, the signal poll and the
    status with the battery's poll (telelogger/sampler.py) and the GNSS samples and the standby rules
    in the record task (Telelogger.record_task): their faults still carry their own names."""
    from telelogger import sampler

    tl = t.tasks

    def task(name, fn, arg=None):
        tl.append(asyncio.create_task(guarded(t, name, fn, arg)))

    task("record", t.record_task)
    task("send", t.sender_task)  # before the OBD task: the connect takes the first turn (tasks.turn), the modem is on
    task("wdt", wdt_task, t)
    if t.obd is not None and t.dtc_ms is not None:
        task("obd", sampler.obd_task, t)
    if t.gnss is not None and hasattr(t.gnss, "run"):
        task("gnss_source", t.gnss.run)
    task("poll", sampler.poll_task, t)  # (the status too: always)
    return tl


async def run(t, duration_ms=None):
    """Telelogger.run: runs the tasks for duration_ms (None: until a memory-fault reset gives up, see
    t.reset_reason, looked at every second as telelogger.app's run does)."""
    t.start()
    t0 = t.now()
    try:
        while t.reset_reason is None and (duration_ms is None or t.now() - t0 < duration_ms):
            await t.sleep(1000 if duration_ms is None else min(1000, duration_ms - (t.now() - t0)))
    finally:
        t.stop()
