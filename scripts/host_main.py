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
# Names: this file runs as source, so every identifier in it (locals too) and every string of up to 10
# characters is an interned name of the run it measures (ARCHITECTURE.md "RAM"): the option names and
# defaults are one string split on use, locals reuse names the interpreter already has.
import json
import sys


class _Log:
    """The telelogger's log as JSON lines ({"log": level, "msg": text}); debug lines are left out."""

    def _p(self, level, fmt, a):
        try:
            msg = fmt % a if a else fmt
        except (TypeError, ValueError):
            msg = fmt + " " + repr(a)
        print(json.dumps({"log": level, "msg": msg}))

    def info(self, fmt, *a):
        self._p("info", fmt, a)

    def warn(self, fmt, *a):
        self._p("warn", fmt, a)

    def error(self, fmt, *a):
        self._p("error", fmt, a)

    def debug(self, fmt, *a):
        pass


def _fail(msg):
    print("run_host: %s" % msg, file=sys.stderr)
    sys.exit(2)


def main(argv):
    import asyncio
    import os

    # --NAME VALUE or --NAME=VALUE (the first of each wins); the names and their defaults
    args = {}
    for n in range(len(argv)):
        s = argv[n]
        if s[:2] == "--":
            if "=" in s:
                s, _, v = s.partition("=")
                args.setdefault(s, v)
            elif n + 1 < len(argv):
                args.setdefault(s, argv[n + 1])
    path, root, name, store, sec_path, duration_ms, drain_ms, progress_ms, power_key = [
        args.get("--" + s.partition(":")[0], s.partition(":")[2] or None) for s in (
            "config:config.json root board:oneplus-b store:/tmp/freematics-queue secrets duration drain:0 "
            "status-ms:2000 power-key").split()]
    getenv = getattr(os, "getenv", None) or (lambda s: None)
    if root:
        # main.py's choice of the build on the folder root (telelogger.otaboot.select)
        root = root.rstrip("/") + "/"
        s = "%s/boards/%s.json" % (os.getcwd(), name)  # found before select() changes the directory
        try:
            os.stat(s)
            name = s
        except OSError:
            pass
        keep = list(sys.modules)
        slot = "-"
        try:
            from telelogger import otaboot

            slot = otaboot.select(root)
        except Exception as e:  # a tree without OTA, a flash it cannot read: the tree on MICROPYPATH
            print(json.dumps({"log": "warn", "msg": "ota: %r: running the deployed tree" % (e,)}))
        print(json.dumps({"ota": {"slot": slot, "root": root}}))
        try:
            from telelogger import app, appboot
        except Exception as e:
            # a slot that cannot import the app: the deployed tree in this boot (otaboot.fallback records it,
            # a build on trial is rolled back)
            if slot == "-":
                raise
            print(json.dumps({"log": "error", "msg": "ota: slot %s: %r: running the deployed tree" % (slot, e)}))
            for s in [s for s in sys.modules if s not in keep]:
                del sys.modules[s]
            os.chdir(root)
            from telelogger import otaboot

            otaboot.fallback(e, root)
            from telelogger import app, appboot
    else:
        from telelogger import app, appboot

    if not getenv("FM_NO_PRELOAD"):  # test_boot_heap: the set without it
        appboot.preload_resident(path)  # as device_main: the resident modules first, before boot's own
    from board import load_board, make_board

    # the validated config from its cache (telelogger.configcache, written by scripts/run_host.py as
    # `make deploy` writes it for the device): a normal boot does not import the validator
    s = "%s_cfg.json" % store.rstrip("/")  # configcache.cache_path(store), without importing it here
    cfg = appboot.load_config_cached(path, sec_path, s)
    try:
        if cfg is None:
            from telelogger import config

            cfg = config.load(path, sec_path)
            del config
            appboot.save_config_cache(path, sec_path, s, cfg)
    except MemoryError:
        raise
    except Exception as e:  # the user's config: one line per mistake naming it, no traceback (scripts/run_host.py)
        errors = getattr(e, "errors", None) or [e]
        for v in errors[:-1]:
            print("run_host: config %s: %s" % (path, v), file=sys.stderr)
        _fail("config %s: %s" % (path, errors[-1]))
    from core.unload import forget

    del appboot
    for s in ("telelogger.appboot", "telelogger.config", "telelogger.configerror"):
        forget(s)  # boot only, as on the device (device_main drops them too)
    try:
        desc = load_board(name)
    except MemoryError:
        raise
    except Exception as e:
        _fail("board %s: %s" % (name, e))
    kw = {}
    if power_key:
        kw["power_key"] = power_key  # board.host.pin_file: the power-key pin to a file
    board = make_board(desc, argv, **kw)
    if root:
        board.ota_root = root  # telelogger/loopinit.py: where the OTA files are (the board's "/")

        def reset():  # a board reset: exit status 3, for the supervisor to start the firmware again
            print(json.dumps({"reset": True}))
            sys.exit(3)  # SystemExit leaves the event loop on both runtimes

        board.reset = reset
    try:
        os.mkdir(store)
    except OSError:
        pass

    # FM_HEAPPROF=S, FM_QSTRS, FM_HEAPMAP (one string split: no names)
    data = [getenv(s) for s in "FM_HEAPPROF FM_QSTRS FM_HEAPMAP".split()]
    try:
        import gc
        import micropython
    except ImportError:
        data[0] = None

    async def probe():
        # FM_HEAPPROF=S (MicroPython): every S seconds, after gc.collect(), one {"heapprof": ...} line with the
        # live heap, the interned names (FM_QSTRS=1: each one) and the loaded modules (scripts/bench.py's 'heap'
        # attribution); FM_HEAPMAP=1: the heap's block map too
        while True:
            await asyncio.sleep(float(data[0]))
            gc.collect()
            print('{"heapprof": {"alloc": %d, "free": %d, "modules": %s}}' % (
                gc.mem_alloc(), gc.mem_free(), json.dumps(sorted(sys.modules))))
            micropython.qstr_info(1 if data[1] else 0)
            if data[2]:
                micropython.mem_info(1)

    print('{"start": {"device_id": %s, "store": %s, "impl": %s}}' % (
        json.dumps(cfg.get("device_id")), json.dumps(store), json.dumps(sys.implementation.name)))

    # ("coro": a name the interpreter has)
    coro = app.run(board, cfg, duration_ms=None if duration_ms is None else int(float(duration_ms) * 1000),
                   store_root=store, on_progress=lambda v: print(json.dumps({"progress": v})),
                   progress_ms=int(progress_ms), log=_Log(), drain_ms=int(float(drain_ms) * 1000))
    cfg = None  # as device_main: app.run lets go of the config once the loop is built (the loop keeps what it reads)

    async def run():
        if data[0]:
            asyncio.create_task(probe())
        await coro

    asyncio.run(run())
    print(json.dumps({"done": True}))


if __name__ == "__main__":
    import os

    # scripts/run_host.py passes the arguments in FM_HOST_ARGV (argv strings would be interned names)
    main(os.getenv("FM_HOST_ARGV").split("\n") if os.getenv("FM_HOST_ARGV") else sys.argv[1:])
