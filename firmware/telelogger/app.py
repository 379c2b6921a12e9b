# The telelogger's entry: main.py (ESP32) calls device_main(); scripts/host_main.py (host MicroPython /
# CPython against serial paths) calls run(). Building the parts is telelogger/appasm.py's job (boot
# only: imported for assemble() and forgotten again; it drops telelogger.assembly before the cellular
# publisher and the Telelogger are built: the boot's peak, not both at once).
#
#   t, at = await assemble(board, cfg)                 # a Telelogger (not started) and the modem's ATEngine
#   await run(board, cfg, duration_ms=None, on_progress=fn, progress_ms=3000)
# RAM: what runs once at boot (waiting for a valid config, the note of an error) is
# telelogger/appboot.py, imported for that and forgotten; load_config_waiting, note_error,
# drop_modules and assemble stay importable from here.
import asyncio

from core.compat import const
from core.errors import drop, forget
from telelogger.tasks import text

# the texts it prints (telelogger/texts.py, looked up when printed: tasks.text), by number
_T_DISCONNECT = const(22)
_T_RESETTING = const(23)


def __getattr__(name):
    if name == "drop_modules":  # core.errors.drop, kept importable from here
        return drop
    # the names forwarded, as one string (a tuple of them: one str object per name over 10 characters, resident),
    # and the module named from this one's name (telelogger.appasm / telelogger.appboot: no str constants)
    if name in "load_config_waiting note_error preload_resident load_config_cached save_config_cache assemble".split():
        m = __name__ + ("asm" if name == "assemble" else "boot")
        v = getattr(__import__(m, None, None, ("_",)), name)
        forget(m)
        return v
    raise AttributeError(name)


async def run(board, cfg, duration_ms=None, store_root="/queue", on_progress=None, progress_ms=3000, log=None,
              drain_ms=0):
    """Run the telelogger (forever, or for duration_ms, then send what is queued for up to
    drain_ms and disconnect)."""
    if on_progress is not None:
        # the host runner's progress lines (telelogger.progress: resident there): imported before the boot's
        # peak, not in the middle of it (its names may be the ones that make the name pool grow)
        from telelogger.progress import progress
    from telelogger import appasm  # boot only: the parts built, then forgotten

    box = [cfg]  # (appasm takes the config out: it lets go of it once the Telelogger is built)
    cfg = None
    try:
        t, at = await appasm.assemble(board, box, store_root=store_root, log=log)
    finally:
        appasm = None  # (a local: it would keep the module's code alive)
        forget(__name__ + "asm")  # telelogger.appasm (a literal of it would be a str object of this module)
    t.start()
    t0 = t.now()
    try:
        while (duration_ms is None or t.now() - t0 < duration_ms) and t.reset_reason is None:
            step = progress_ms if duration_ms is None else min(progress_ms, duration_ms - (t.now() - t0))
            await t.sleep(max(1, step))
            if on_progress is not None:
                on_progress(progress(t))
        t.stop()
        t.build_record()
        if drain_ms:
            await t.drain(drain_ms)
        if on_progress is not None:
            on_progress(progress(t))
    finally:
        t.stop()
        try:
            await asyncio.wait_for(t.pub.disconnect(), 5)
        except Exception as e:
            print(text(_T_DISCONNECT) % e)
        if at is not None:
            at.stop()
        close = getattr(t.store, "close", None)
        if close:
            close()
    return t


def device_main(restart_delay_ms=10000):
    """ESP32 entry (main.py): /board.json, /config.json (+ /secrets.json), queue in /queue.
    A configuration error waits for a fixed file (load_config_waiting); any other error is printed,
    kept in /last_error.txt, and the board resets after restart_delay_ms."""
    box = [None]  # type: list  # the board once made (the error path resets through it)
    try:
        # the boot in a frame of its own (appboot.boot, boot only: it forgets its module), gone before the run: this
        # frame lives as long as the loop, and its dead value-stack slots would keep what the boot handled (the
        # board's description, the config)
        from telelogger import appboot

        coro = appboot.boot(box, run)
        appboot = None
        t = asyncio.run(coro)
        if t is not None and t.reset_reason is not None:
            print(text(_T_RESETTING) % t.reset_reason)
            box[0].reset()  # the reason is in /queue/last_reset: the next boot's status carries it
    except KeyboardInterrupt:
        raise  # Ctrl-C at the REPL: stop here, no reset
    except Exception as e:
        from telelogger.appboot import stopped

        if not stopped(e, box[0], restart_delay_ms):
            raise  # no board: nothing can reset us; leave the REPL usable

