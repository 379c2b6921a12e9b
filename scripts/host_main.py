# Host entry of the firmware (MicroPython unix port or CPython): the telelogger on serial paths
# through board.host.HostBoard. Started by scripts/run_host.py with MICROPYPATH=firmware:.frozen.
#
#   micropython scripts/host_main.py --modem PATH [--obd PATH] [--gps PATH] --config FILE
#       [--secrets FILE] [--board NAME] [--store DIR] [--duration S] [--drain S] [--status-ms MS]
#       [--power-key PATH] [--root DIR]
#
# Prints one JSON line per status interval: {"progress": {...}} (see telelogger.progress).
# --root DIR: the device's filesystem root on this machine (OTA updates, FORMAT.md "OTA updates"): as
# main.py does on the board, the build to run is chosen first (telelogger.otaboot.select: DIR/ota/ptr
# selects DIR/ota/a or b, made the current directory, else the tree on MICROPYPATH runs), an OTA slot
# that cannot import the app falls back to that tree (otaboot.fallback), the telelogger's OTA files
# live under DIR/ota/, and a board reset (a reboot command, ota_commit, a trial timeout) ends the
# process with exit status 3 ({"reset": ...} on stdout first), for a supervisor to start it again as
# the ESP32 boots again. Without --root nothing of this happens (the board reset raises DeepSleep).
import json
import sys

RESET_EXIT = 3  # exit status of a board reset under --root (the supervisor restarts the firmware)


def _opt(argv, name, default=None):
    for i in range(len(argv)):
        a = argv[i]
        if a == name and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith(name + "="):
            return a[len(name) + 1 :]
    return default


class _Log:
    def __init__(self, quiet):
        self.quiet = quiet

    def _p(self, lvl, fmt, args):
        try:
            msg = fmt % args if args else fmt
        except (TypeError, ValueError):
            msg = "%s %r" % (fmt, args)
        print(json.dumps({"log": lvl, "msg": msg}))

    def info(self, fmt, *a):
        self._p("info", fmt, a)

    def warn(self, fmt, *a):
        self._p("warn", fmt, a)

    def error(self, fmt, *a):
        self._p("error", fmt, a)

    def debug(self, fmt, *a):
        if not self.quiet:
            self._p("debug", fmt, a)


def _fail(msg):
    print("run_host: " + msg, file=sys.stderr)
    sys.exit(2)


def _heap_profile():
    """FM_HEAPPROF=S (MicroPython): every S seconds, after gc.collect(), one {"heapprof": ...} line with the live
    heap, the interned names and the loaded modules (scripts/bench.py's 'heap' attribution)."""
    import os

    every = os.getenv("FM_HEAPPROF") if hasattr(os, "getenv") else None
    if not every:
        return
    import asyncio
    import gc

    try:
        import micropython
    except ImportError:
        return

    async def _probe():
        while True:
            await asyncio.sleep(float(every))
            gc.collect()
            print(json.dumps({"heapprof": {"alloc": gc.mem_alloc(), "free": gc.mem_free(),
                                           "modules": sorted(sys.modules)}}))
            micropython.qstr_info(1 if os.getenv("FM_QSTRS") else 0)
            if os.getenv("FM_HEAPMAP"):
                micropython.mem_info(1)

    return _probe


def _select(root):
    """main.py's choice of the build on the folder `root` (absolute, ending in "/"): -> (slot, the
    module names imported before it)."""
    keep = list(sys.modules)
    slot = "-"
    try:
        from telelogger import otaboot

        slot = otaboot.select(root)
    except Exception as e:  # a tree without OTA, a flash it cannot read: the tree on MICROPYPATH
        print(json.dumps({"log": "warn", "msg": "ota: %r: running the deployed tree" % (e,)}))
    print(json.dumps({"ota": {"slot": slot, "root": root}}))
    return slot, keep


def _import_app(root, slot, keep):
    """telelogger.app and appboot from the chosen build; a slot that cannot import them: the
    deployed tree in this boot (otaboot.fallback records it, a build on trial is rolled back)."""
    try:
        from telelogger import app, appboot

        return app, appboot
    except Exception as e:
        if slot == "-":
            raise
        import os

        print(json.dumps({"log": "error", "msg": "ota: slot %s: %r: running the deployed tree" % (slot, e)}))
        for m in [m for m in sys.modules if m not in keep]:
            del sys.modules[m]
        os.chdir(root)
        from telelogger import otaboot

        otaboot.fallback(e, root)
        from telelogger import app, appboot

        return app, appboot


def _exit_on_reset(board):
    def reset():
        print(json.dumps({"reset": True}))
        sys.exit(RESET_EXIT)  # SystemExit leaves the event loop on both runtimes

    board.reset = reset


def main(argv):
    import asyncio

    cfg_path = _opt(argv, "--config", "config.json")
    root = _opt(argv, "--root")
    board_name = _opt(argv, "--board", "oneplus-b")
    if root:
        import os

        root = root.rstrip("/") + "/"
        bp = "%s/boards/%s.json" % (os.getcwd(), board_name)  # found before select() changes the directory
        try:
            os.stat(bp)
            board_name = bp
        except OSError:
            pass
        slot, keep = _select(root)
        app, appboot = _import_app(root, slot, keep)
    else:
        from telelogger import app, appboot

    import os

    if not (hasattr(os, "getenv") and os.getenv("FM_NO_PRELOAD")):  # test_boot_heap: the set without it
        appboot.preload_resident(cfg_path)  # as device_main: the resident modules first, before boot's own
    from board import load_board, make_board

    store = _opt(argv, "--store", "/tmp/freematics-queue")
    # the validated config from its cache (telelogger.configcache, written by scripts/run_host.py as
    # `make deploy` writes it for the device): a normal boot does not import the validator
    cache = store.rstrip("/") + "_cfg.json"  # configcache.cache_path(store), without importing it here
    sec_path = _opt(argv, "--secrets")
    cfg = appboot.load_config_cached(cfg_path, sec_path, cache)
    try:
        if cfg is None:
            from telelogger import config

            cfg = config.load(cfg_path, sec_path)
            del config
            appboot.save_config_cache(cfg_path, sec_path, cache, cfg)
    except MemoryError:
        raise
    except Exception as e:  # the user's config: one line per mistake naming it, no traceback (scripts/run_host.py)
        errs = getattr(e, "errors", None) or [e]
        for x in errs[:-1]:
            print("run_host: config %s: %s" % (cfg_path, x), file=sys.stderr)
        _fail("config %s: %s" % (cfg_path, errs[-1]))
    from core.unload import forget

    del appboot
    for m in ("telelogger.appboot", "telelogger.config", "telelogger.configerror"):
        forget(m)  # boot only, as on the device (device_main drops them too)
    try:
        desc = load_board(board_name)
    except MemoryError:
        raise
    except Exception as e:
        _fail("board %s: %s" % (board_name, e))
    kw = {}
    if _opt(argv, "--power-key"):
        kw["power_key"] = _opt(argv, "--power-key")  # board.host.pin_file: the power-key pin to a file
    board = make_board(desc, argv, **kw)
    if root:
        board.ota_root = root  # telelogger/loopinit.py: where the OTA files are (the board's "/")
        _exit_on_reset(board)
    dur = _opt(argv, "--duration")
    try:
        import os

        os.mkdir(store)
    except OSError:
        pass

    def show(p):
        print(json.dumps({"progress": p}))

    probe = _heap_profile()
    print(json.dumps({"start": {"device_id": cfg.get("device_id"), "store": store, "impl": sys.implementation.name}}))
    job = app.run(board, cfg, duration_ms=None if dur is None else int(float(dur) * 1000), store_root=store,
                  on_progress=show, progress_ms=int(_opt(argv, "--status-ms", "2000")),
                  log=_Log(True), drain_ms=int(float(_opt(argv, "--drain", "0")) * 1000))

    async def _with_probe():
        asyncio.create_task(probe())
        await job

    asyncio.run(_with_probe() if probe else job)
    print(json.dumps({"done": True}))


if __name__ == "__main__":
    import os

    # scripts/run_host.py passes the arguments in FM_HOST_ARGV (argv strings would be interned names)
    main(os.getenv("FM_HOST_ARGV").split("\n") if os.getenv("FM_HOST_ARGV") else sys.argv[1:])
