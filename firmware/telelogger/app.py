# The telelogger's entry: main.py (ESP32) calls device_main(); scripts/host_main.py (host MicroPython /
# CPython against serial paths) calls run(). Building everything is telelogger.assembly's job (boot
# only: imported for assemble() and dropped again).
#
#   t, at = await assemble(board, cfg)                 # a Telelogger (not started) and the modem's ATEngine
#   await run(board, cfg, duration_ms=None, on_progress=fn, progress_ms=3000)
import asyncio


async def assemble(board, cfg, clock=None, store_root="/queue", log=None):
    """-> (telelogger, at): the Telelogger (not started) and the modem's ATEngine (started;
    None when nothing uses the modem: WiFi transport without modem GNSS). Stop `at` after the
    telelogger. The assembly code is dropped from the heap when it is done."""
    import sys

    keep = list(sys.modules)
    from telelogger import assembly

    try:
        return await assembly.assemble(board, cfg, clock, store_root, log, stop_for_reset=_stop_for_reset)
    finally:
        drop_modules("telelogger.assembly", keep)


async def build(board, cfg, clock=None, store_root="/queue", log=None):
    """A Telelogger (not started) for the board and config. See assemble()."""
    return (await assemble(board, cfg, clock, store_root, log))[0]


def _stop_for_reset(reason):
    """The loop gave up on a persistent fault (memory): it has stored what it could and written the
    reason to reset_path; run() sees t.reset_reason, returns, and the caller resets the board
    (device_main: machine.reset(); the host runner exits with its reset code)."""
    return None


async def run(board, cfg, duration_ms=None, store_root="/queue", on_progress=None, progress_ms=3000, log=None,
              drain_ms=0):
    """Run the telelogger (forever, or for duration_ms, then send what is queued for up to
    drain_ms and disconnect)."""
    t, at = await assemble(board, cfg, store_root=store_root, log=log)
    t.start()
    t0 = t.now()
    try:
        while (duration_ms is None or t.now() - t0 < duration_ms) and t.reset_reason is None:
            step = progress_ms if duration_ms is None else min(progress_ms, duration_ms - (t.now() - t0))
            await t.sleep(max(1, step))
            if on_progress is not None:
                from telelogger.progress import progress

                on_progress(progress(t))
        t.stop()
        t.build_record()
        if drain_ms:
            await t.drain(drain_ms)
        if on_progress is not None:
            from telelogger.progress import progress

            on_progress(progress(t))
    finally:
        t.stop()
        try:
            await asyncio.wait_for(t.pub.disconnect(), 5)
        except Exception as e:
            print("disconnect: %s" % e)
        if at is not None:
            at.stop()
        close = getattr(t.store, "close", None)
        if close:
            close()
    return t


def _exists(path):
    import os

    try:
        os.stat(path)
        return True
    except OSError:
        return False


def _stamp(paths):
    """What tells a changed file from an unchanged one: (size, mtime) of each path, None if absent."""
    import os

    out = []
    for p in paths:
        try:
            st = os.stat(p)
            out.append((st[6], st[8]))
        except OSError:
            out.append(None)
    return out


def note_error(text, path="/last_error.txt"):
    """Keep the reason the telelogger is not running where an owner finds it (make logs, mpremote cat)."""
    try:
        with open(path, "w") as f:
            f.write(text + "\n")
    except OSError:
        pass


def drop_modules(prefix, keep=()):
    """core.unload.drop: forget modules imported for one job (here: boot)."""
    from core.unload import drop

    drop(prefix, keep)


def preload_resident(cfg_path):
    """telelogger.resident.preload: what stays imported is imported first (packed at the heap's bottom)."""
    from telelogger import resident

    try:
        return resident.preload(cfg_path)
    finally:
        drop_modules("telelogger.resident")


def load_config_cached(cfg_path, sec_path, cache):
    """The config from the cache (telelogger.configcache) when its files are unchanged, else None."""
    from telelogger import configcache

    try:
        return configcache.load(cache, cfg_path, sec_path)
    finally:
        drop_modules("telelogger.configcache")


def save_config_cache(cfg_path, sec_path, cache, cfg):
    from telelogger import configcache

    try:
        return configcache.save(cache, cfg_path, sec_path, cfg)
    finally:
        drop_modules("telelogger.configcache")


def load_config_waiting(cfg_path="/config.json", sec_path="/secrets.json", poll_ms=5000, sleep_ms=None,
                        error_path="/last_error.txt", max_polls=None, cache=None, restart=None):
    """The validated config, waiting for a fix when it is missing or invalid: a configuration error
    never becomes a reset loop. The error is printed once and kept in error_path; the files are
    re-read when their size or time changes (copy a fixed file with mpremote; Ctrl-C gives the
    REPL). The validator is imported for this and dropped again: it is needed at boot only.
    max_polls: give up (return None) after that many polls (tests). cache: the validated config's
    cache file (telelogger.configcache): an unchanged config is read from it without the validator;
    a config validated now is cached, and restart() (the board's reset) is called so that the boot
    that runs does not carry the validator's interned names."""
    import sys

    if cache:
        cfg = load_config_cached(cfg_path, sec_path if _exists(sec_path) else None, cache)
        if cfg is not None:
            return cfg

    if sleep_ms is None:
        import time

        sleep_ms = time.sleep_ms if hasattr(time, "sleep_ms") else (lambda ms: time.sleep(ms / 1000))
    paths = (cfg_path, sec_path)
    polls = 0
    while True:
        stamp = _stamp(paths)
        loaded = [m for m in sys.modules if m.startswith("telelogger.config")]
        try:
            from telelogger import config

            sec = sec_path if _exists(sec_path) else None
            cfg = config.load(cfg_path, sec)
            if cache and save_config_cache(cfg_path, sec, cache, cfg) and restart is not None:
                print("config: %s validated and cached: restarting without the validator" % cfg_path)
                restart()
            return cfg
        except (OSError, ValueError) as e:  # ConfigError is a ValueError; OSError: a file is missing
            msg = "config: %s: fix %s (and %s) and copy it to the board; waiting (every %d s) for a new file" % (
                e, cfg_path, sec_path, poll_ms // 1000)
            print(msg)
            note_error(msg, error_path)
        finally:
            drop_modules("telelogger.config", loaded)
        while _stamp(paths) == stamp:
            if max_polls is not None and polls >= max_polls:
                return None
            polls += 1
            sleep_ms(poll_ms)


def device_main(restart_delay_ms=10000):
    """ESP32 entry (main.py): /board.json, /config.json (+ /secrets.json), queue in /queue.
    A configuration error waits for a fixed file (load_config_waiting); any other error is printed,
    kept in /last_error.txt, and the board resets after restart_delay_ms."""
    import sys
    import time

    from board import load_board, make_board

    board = None
    try:
        preload_resident("/config.json")
        board = make_board(load_board(None))
        cfg = load_config_waiting(cache="/queue_cfg.json", restart=board.reset)
        if not _exists("/queue"):
            import os

            os.mkdir("/queue")
        t = asyncio.run(run(board, cfg, store_root="/queue"))
        if t is not None and t.reset_reason is not None:
            print("telelogger: resetting: %s" % t.reset_reason)
            board.reset()  # the reason is in /queue/last_reset: the next boot's status carries it
    except KeyboardInterrupt:
        raise  # Ctrl-C at the REPL: stop here, no reset
    except Exception as e:
        pe = getattr(sys, "print_exception", None)
        if pe:
            pe(e)
        else:
            print("telelogger stopped: %r" % e)
        note_error("%s: %s" % (type(e).__name__, e))
        if board is None:
            raise  # no board: nothing can reset us; leave the REPL usable
        if hasattr(time, "sleep_ms"):
            time.sleep_ms(restart_delay_ms)
        else:
            time.sleep(restart_delay_ms / 1000)
        board.reset()
