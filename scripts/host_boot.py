# Boot half of the host entry (scripts/host_main.py): the options, the OTA slot choice under --root, the
# resident modules' preload, the validated config (from its cache, else validated and cached), the board and the
# store folder. Imported by host_main for one call and dropped again, as main.py's boot work is on the device:
# none of this stays on the heap the telelogger then runs in (scripts/run_host.py compiles it beside the firmware).
import json
import sys


def _fail(msg):
    print("run_host: %s" % msg, file=sys.stderr)
    sys.exit(2)


def boot(argv):
    """-> (app, board, cfg, store, duration_ms, drain_ms, progress_ms): what host_main runs."""
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
    from core.errors import forget

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
    return app, board, cfg, store, duration_ms, drain_ms, progress_ms
