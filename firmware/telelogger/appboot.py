# The telelogger entry's boot half (telelogger/app.py): waiting for a valid config, the note of why the
# telelogger is not running. Imported for one job and forgotten again.
from core.unload import drop


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
    drop(prefix, keep)


def ensure_dir(path):
    """Creates the folder `path` unless it exists."""
    if not _exists(path):
        import os

        os.mkdir(path)


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


def stopped(e, board, restart_delay_ms, error_path="/last_error.txt"):
    """device_main's end after an error `e`: printed and kept in error_path; with a board, it resets
    after restart_delay_ms (-> True: the reset does not return on the device); without one -> False
    (the caller re-raises)."""
    import sys
    import time

    pe = getattr(sys, "print_exception", None)
    if pe:
        pe(e)
    else:
        print("telelogger stopped: %r" % e)
    note_error("%s: %s" % (type(e).__name__, e), error_path)
    if board is None:
        return False
    if hasattr(time, "sleep_ms"):
        time.sleep_ms(restart_delay_ms)
    else:
        time.sleep(restart_delay_ms / 1000)
    board.reset()
    return True
