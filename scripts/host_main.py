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
# Heap: under MicroPython scripts/run_host.py compiles this file and scripts/host_boot.py beside the firmware
# (mpy-cross, the device's flags) and runs `micropython -m host_main`, so the host entry costs what main.py
# and a board module cost on the device, not a source compile: the boot half (options, OTA slot, config,
# board) is host_boot, imported for one call and dropped. Every identifier and every string of up to 10
# characters in either is an interned name of the run it measures (ARCHITECTURE.md "RAM"): the option names
# and defaults are one string split on use, locals reuse names the interpreter already has.
import json
import sys


class _Log:
    """The telelogger's log as JSON lines ({"log": level, "msg": text}): log.info/warn/error(fmt, *args); debug lines
    are left out. One method for every level (each method would cost the heap a function)."""

    def __getattr__(self, level):
        def p(fmt, *a):
            if level != "debug":
                try:
                    msg = fmt % a if a else fmt
                except (TypeError, ValueError):
                    msg = fmt + " " + repr(a)
                print(json.dumps({"log": level, "msg": msg}))

        return p


def main(argv=None):
    """argv None: FM_HOST_ARGV (scripts/run_host.py's, one argument per line), else sys.argv[1:]."""
    import asyncio

    # the boot in a frame of its own (_start) that is gone before the run: a long-lived frame's dead value-stack
    # slots would keep what the boot handled (the config, the boot module's functions, the arguments: a list in
    # a box that _start empties, not a local of this frame) on the heap for good
    asyncio.run(_start([argv]))
    print(json.dumps({"done": True}))


def _start(box):
    """The boot (host_boot) and the coroutine that runs the telelogger."""
    import asyncio
    import os

    import host_boot

    argv = box.pop()
    if argv is None:
        argv = os.getenv("FM_HOST_ARGV")
        argv = argv.split("\n") if argv else sys.argv[1:]
    app, board, cfg, store, duration_ms, drain_ms, progress_ms = host_boot.boot(argv)
    argv = None
    del host_boot
    sys.modules.pop("host_boot", None)  # boot only: its code leaves the heap
    getenv = getattr(os, "getenv", None) or (lambda s: None)

    # FM_HEAPPROF=S, FM_QSTRS, FM_HEAPMAP, FM_HEAPMAP_MIN (one string split: no names)
    data = [getenv(s) for s in "FM_HEAPPROF FM_QSTRS FM_HEAPMAP FM_HEAPMAP_MIN".split()]
    try:
        import gc
        import micropython
    except ImportError:
        data[0] = None

    async def probe():
        # FM_HEAPPROF=S (MicroPython): every S seconds, after gc.collect(), one {"heapprof": ...} line with the
        # live heap, the interned names (FM_QSTRS=1: each one) and the loaded modules (scripts/bench.py's 'heap'
        # attribution); FM_HEAPMAP=1: the heap's block map too, FM_HEAPMAP=2: the census of scripts/heapcensus.py's
        # diagnostic interpreter instead; FM_HEAPMAP_MIN=B: the map or census only of a heap holding B bytes or more
        # (the peaks: a census takes long)
        while True:
            await asyncio.sleep(float(data[0]))
            gc.collect()
            print('{"heapprof": {"alloc": %d, "free": %d, "modules": %s}}' % (
                gc.mem_alloc(), gc.mem_free(), json.dumps(sorted(sys.modules))))
            micropython.qstr_info(1 if data[1] else 0)
            if data[2] and gc.mem_alloc() >= int(data[3] or 0):
                micropython.mem_info(int(data[2]))

    print('{"start": {"device_id": %s, "store": %s, "impl": %s}}' % (
        json.dumps(cfg.get("device_id")), json.dumps(store), json.dumps(sys.implementation.name)))

    # ("coro": a name the interpreter has)
    def show(v):  # the host runner's own output: a line it cannot make for want of heap is skipped, not fatal
        # written as json.dump goes (small pieces), not built as one string: the device has no such line
        out = sys.stdout
        try:
            out.write('{"progress": ')
            json.dump(v, out)
            print("}")
        except MemoryError:  # (a line cut short ends here: the runner skips what is not JSON)
            print('\n{"log": "warn", "msg": "progress line skipped: out of memory"}')

    coro = app.run(board, cfg, duration_ms=None if duration_ms is None else int(float(duration_ms) * 1000),
                   store_root=store, on_progress=show,
                   progress_ms=int(progress_ms), log=_Log(), drain_ms=int(float(drain_ms) * 1000))
    cfg = None  # as device_main: app.run lets go of the config once the loop is built (the loop keeps what it reads)

    async def run():
        if data[0]:
            asyncio.create_task(probe())
        await coro

    return run()


if __name__ == "__main__":
    # scripts/run_host.py passes the arguments in FM_HOST_ARGV (argv strings would be interned names)
    main()
