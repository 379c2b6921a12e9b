# The telelogger entry's boot half (telelogger/app.py): the resident modules imported first, the
# validated config from its cache, waiting for a valid config, the note of why the telelogger is not
# running. Imported for one job and forgotten again. What preload imports (per role) and the config
# cache are here, not in modules of their own, because boot always needs all three: each module costs
# ~3 interned names (its dotted name, its package attribute, its file name) for good.
# telelogger/resident.py and telelogger/configcache.py keep the tools' API (and the cache's format).
import json
import sys

from core.compat import const
from core.errors import drop

_VERSION = const(1)  # the config cache format's "v" (telelogger/configcache.py)
# the collector runs after every 4 KB allocated (gc.threshold), not only when an allocation fails: objects that stay are
# then placed in the lowest holes, not above a front of garbage where they would split the free space into pieces too
# small for the next rare module's code (ARCHITECTURE.md "RAM": with it the entry path runs in 104K, without it 112K)
_GC_EVERY = const(4096)


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


def ensure_dir(path):
    """Creates the folder `path` unless it exists."""
    import os

    try:
        os.stat(path)
    except OSError:
        os.mkdir(path)


# ---- what stays imported (telelogger/resident.py tells why) ----------------------------------------


def modules(cfg):
    """The resident modules for a config (raw or validated: only transport, gnss.source and
    obd.enabled are read, with the validator's defaults)."""
    # "role: modules", one line each, in one string: a short module name as a literal would be an
    # interned name even where that module is never loaded (net.wifi on a cellular device)
    roles = {}
    for ln in ("telelogger: core.errors telelogger.store telelogger.record telelogger.sampler "
               "telelogger.standby telelogger.loop telelogger.app\n"  # always
               "cellular: at.engine net.cellular telelogger.modemctl\n"
               "wifi: net.wifi\n"
               "obd: obdii.elm obdii.obd\n"  # obd.enabled
               "modem: at.engine gnss.modem\n"  # gnss.source
               "uart: gnss.nmea\n"
               "coproc: gnss.coproc\n"
               "at_log: at.atlog").split("\n"):  # debug.at_log
        k, _, v = ln.partition(": ")
        roles[k] = v.split()
    transport = cfg.get("transport", "cellular")
    out = roles["telelogger"]
    out += roles["cellular" if transport == "cellular" else "wifi"]
    if (cfg.get("obd") or {}).get("enabled", True):
        out += roles["obd"]
    out += roles.get((cfg.get("gnss") or {}).get("source", "uart"), [])
    if (cfg.get("debug") or {}).get("at_log"):
        out += roles["at_log"]
    return out


def preload_resident(cfg_path):
    """Imports modules(config file) in order: what stays imported is imported first (packed at the
    heap's bottom). A config that cannot be read is the validator's to report (later): nothing is
    preloaded then. The collector's threshold (_GC_EVERY) is set first. -> the modules imported."""
    import gc

    if hasattr(gc, "threshold"):  # MicroPython (CPython's collector has no such setting)
        gc.threshold(_GC_EVERY)
    try:
        with open(cfg_path) as f:
            cfg = json.load(f)
        names = modules(cfg if isinstance(cfg, dict) else {})
    except (OSError, ValueError, AttributeError):
        return []
    done = []
    if "net.cellular" in names:
        # the module names that the cellular device's resident modules have as literals made interned names
        # before those load (telelogger/names.py: its .mpy's names, then it is forgotten)
        from core.errors import forget

        __import__("telelogger.names")
        forget("telelogger.names")
    for m in names:
        if m not in sys.modules:
            __import__(m)
            done.append(m)
    if "telelogger.record" in done:
        # the codec's table of decimal places (read once from telelogger.keys, which is dropped again) stays
        # too: built now, beside what stays, rather than at the first record in the middle of the bring-up
        sys.modules["telelogger.record"].dp_of(0)  # any key: the first call builds it
    return done


# ---- the validated config's cache (telelogger/configcache.py: why, and the format) ------------------


def _digest(path):
    """[size, crc32] of a file's bytes, or None when it cannot be read."""
    from binascii import crc32

    try:
        f = open(path, "rb")
    except OSError:
        return None
    c = n = 0
    buf = bytearray(256)
    mv = memoryview(buf)
    try:
        while True:
            k = f.readinto(buf)
            if not k:
                break
            c = crc32(mv[:k], c)
            n += k
    except OSError:
        return None
    finally:
        f.close()
    return [n, c & 0xFFFFFFFF]


def _digests(cfg_path, sec_path, schema=None):
    """The digests of the config, the secrets (or None; a list: that digest, as a cache has it:
    telelogger/cfgcmd.py) and the compiled defaults the firmware would import (schema: that file;
    None: telelogger/schema.(m)py on sys.path)."""
    if schema is None:
        for d in sys.path:
            for n in ("telelogger/schema.mpy", "telelogger/schema.py"):
                p = (d.rstrip("/") + "/" + n) if d else n
                try:
                    open(p, "rb").close()
                    schema = p
                    break
                except OSError:
                    pass
            if schema is not None:
                break
    sec = sec_path if isinstance(sec_path, list) else _digest(sec_path) if sec_path else None
    return [_digest(cfg_path), sec, _digest(schema or "")]


def load_config_cached(cfg_path, sec_path, cache, schema=None):
    """The cached config (the file `cache`) when every file it was made from is unchanged, else None
    (absent, stale, unreadable or damaged cache: the caller validates again)."""
    try:
        with open(cache) as f:
            c = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(c, dict) or c.get("v") != _VERSION or not isinstance(c.get("cfg"), dict):
        return None
    want = _digests(cfg_path, sec_path, schema)
    if want[0] is None or want[2] is None or c.get("files") != want:
        return None
    cfg = c["cfg"]
    if "config_path" in cfg:
        cfg["config_path"] = cfg_path  # where it was validated (make deploy: on the host) is not where it is
    return cfg


def save_config_cache(cfg_path, sec_path, cache, cfg, schema=None):
    """Writes the cache file `cache` atomically (a temporary file renamed over it). -> True when it
    was written and reads back as valid (the caller may then reset to boot without the validator's
    names)."""
    import os

    files = _digests(cfg_path, sec_path, schema)
    if files[0] is None or files[2] is None:
        return False
    tmp = cache + ".tmp"
    try:
        with open(tmp, "w") as f:
            json.dump({"v": _VERSION, "files": files, "cfg": cfg}, f)
        os.rename(tmp, cache)
    except OSError:
        try:
            os.remove(tmp)
        except OSError:
            pass
        return False
    back = load_config_cached(cfg_path, sec_path, cache, schema)
    return back is not None and back == dict(cfg, config_path=cfg_path) if "config_path" in cfg else back == cfg


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
    if cache:
        cfg = load_config_cached(cfg_path, sec_path if _stamp((sec_path,))[0] else None, cache)  # (present)
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

            sec = sec_path if _stamp((sec_path,))[0] else None  # (present)
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
            drop("telelogger.config", loaded)
        while _stamp(paths) == stamp:
            if max_polls is not None and polls >= max_polls:
                return None
            polls += 1
            sleep_ms(poll_ms)


def boot(box, run):
    """app.device_main's boot: the resident modules, the board (into box), the validated config -> the coroutine
    run(board, cfg, ...) (telelogger.app's). This module is forgotten before it returns."""
    from board import load_board, make_board
    from core.errors import forget

    preload_resident("/config.json")  # what stays imported first, packed at the heap's bottom
    box[0] = board = make_board(load_board(None))
    # the validated config's cache beside the queue (configcache.cache_path("/queue"), written by make deploy)
    cfg = load_config_waiting(cache="/queue_cfg.json", restart=board.reset)
    ensure_dir("/queue")
    forget(__name__)
    return run(board, cfg, store_root="/queue")  # (run() lets go of the config once the loop is built)


def stopped(e, board, restart_delay_ms, error_path="/last_error.txt"):
    """device_main's end after an error `e`: printed and kept in error_path; with a board, it resets
    after restart_delay_ms (-> True: the reset does not return on the device); without one -> False
    (the caller re-raises)."""
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
