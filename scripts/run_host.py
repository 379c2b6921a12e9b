#!/usr/bin/env python3
"""Run the firmware's telelogger on this machine against serial paths.

    python scripts/run_host.py --modem /dev/ttyUSB2 --obd /dev/pts/5 --gps /dev/pts/6 \\
        --config config.json --secrets secrets.json --duration 60 [--runtime micropython|cpython] \\
        [--heap 96K] [--power-key PATH]

--modem: a SIM7600's AT port (real USB modem or the simulator's pty), --obd: an ELM327 (the
elm327-emulator's pty or a real adapter), --gps: an NMEA stream. --power-key PATH: the host board
appends one line to PATH per change of the modem power-key pin (`1` pressed, `0` released, flushed at
once); the pty simulator follows it (host_tests/peers/sim7600.py --power-key PATH).

The default runtime is the host MicroPython, importing the firmware as mpy-cross bytecode from the
filesystem as a stock ESP32 does after `make deploy`, in the ESP32's heap: --heap 96K on the 32-bit
build (.venv/bin/micropython, the ESP32's word size); the 64-bit wheel is a fallback whose objects are
larger, said on stderr. Prints what it runs on stderr; the firmware prints JSON lines on stdout
({"progress": {...}} every --status-ms). The process is replaced by the firmware (exec), so signals
(SIGTERM, SIGKILL) reach the firmware itself. A user mistake (missing config, a path that does not
exist) is one line on stderr and exit status 2.
"""
import argparse
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "host_tests"))

HOST_MAIN = os.path.join(ROOT, "scripts", "host_main.py")
HOST_MODULES = ("host_main", "host_boot")  # compiled for a MicroPython run (host_main's header)
# The ESP32's budget (issue 9): a ONE+ without PSRAM gives MicroPython ~150 KB in all and the firmware
# must boot and run in a 96 KB heap on the 32-bit interpreter, .mpy files loaded into that heap.
DEFAULT_HEAP = "96K"


def micropython_bin():
    """$FM_MPBIN (scripts/heapcensus.py's diagnostic build), else the venv's interpreter (`make venv` builds the
    32-bit one there), else one on PATH."""
    exe = os.environ.get("FM_MPBIN") or os.path.join(os.path.dirname(sys.executable), "micropython")
    if os.path.exists(exe):
        return exe
    return shutil.which("micropython")


def word_bits(exe):
    """32 or 64: the word size of a MicroPython binary (its sys.maxsize, asked once), None if it does not run."""
    try:
        out = subprocess.run([exe, "-c", "import sys; print(sys.maxsize)"], capture_output=True, text=True,
                             timeout=20).stdout.strip()
        return 32 if int(out) < 2 ** 32 else 64
    except (OSError, ValueError, subprocess.SubprocessError):
        return None


def interpreter_note(exe, bits):
    if bits == 32:
        return "MicroPython 32-bit build (the ESP32's word size): %s" % exe
    if bits == 64:
        return ("MicroPython 64-bit wheel fallback (objects ~1.5x the ESP32's; heap figures are not the device's; "
                "`make venv` builds the 32-bit one): %s" % exe)
    return "MicroPython of unknown word size: %s" % exe


_PATHS = ("modem", "obd", "gps", "config", "secrets", "store", "power_key", "root")


def build_command(args):
    fw_args = []
    for name in ("modem", "obd", "gps", "config", "secrets", "board", "store", "duration", "drain", "status_ms",
                 "power_key", "root"):
        v = getattr(args, name)
        if v is not None:
            if name in _PATHS:  # the firmware runs elsewhere (os.chdir below): paths as the user meant them
                v = os.path.abspath(v)
            elif name == "board" and os.path.exists(os.path.join(ROOT, "boards", v + ".json")):
                v = os.path.join(ROOT, "boards", v + ".json")  # found here: the firmware's folder has no boards/
            fw_args += ["--" + name.replace("_", "-"), str(v)]
    env = dict(os.environ)
    if args.runtime == "micropython":
        from mphost import compile_tree

        # `make test-mpy` sets FIRMWARE_PATH to the release build; otherwise an incremental mpy-cross cache
        fw = os.environ.get("FIRMWARE_PATH") or compile_tree(os.path.join(ROOT, "firmware"),
                                                             os.path.join(ROOT, "build", "fw-dev"), release=True,
                                                             device_names=True)
        # Run as the device imports (scripts/build.py source_name): from the build's folder as the current
        # directory (sys.path ''), so each module's __file__ is the name compiled into it, one interned name
        # per module as on the board, not two (an absolute MICROPYPATH made __file__ a second, longer name).
        # The arguments go in FM_HOST_ARGV, not argv: the unix port interns every argv string for good (a
        # device has no argv); host_main.py reads either.
        # the host entry as bytecode too (`-m host_main`): a source script would be compiled in the heap it measures
        env["MICROPYPATH"] = ":%s:.frozen" % compile_host()
        env["FM_HOST_CWD"] = fw
        env["FM_HOST_ARGV"] = "\n".join(fw_args)
        cmd = [micropython_bin(), "-X", "heapsize=%s" % args.heap, "-m", "host_main"]
        shown = "cd %s && MICROPYPATH=%s %s %s" % (fw, env["MICROPYPATH"], " ".join(cmd), " ".join(fw_args))
    else:
        env["PYTHONPATH"] = os.path.join(ROOT, "firmware")
        cmd = [sys.executable, "-u", HOST_MAIN] + fw_args
        shown = "PYTHONPATH=%s %s" % (env["PYTHONPATH"], " ".join(cmd))
    return cmd, env, shown


def compile_host(out=None):
    """scripts/host_main.py and host_boot.py compiled with the firmware's flags into `out` (default build/host-mpy)
    when stale -> out."""
    out = out or os.path.join(ROOT, "build", "host-mpy")
    from mphost import MPY_CROSS, _build

    exe = MPY_CROSS if os.path.exists(MPY_CROSS) else shutil.which("mpy-cross")
    os.makedirs(out, exist_ok=True)
    for name in HOST_MODULES:
        src = os.path.join(ROOT, "scripts", name + ".py")
        dst = os.path.join(out, name + ".mpy")
        if os.path.exists(dst) and os.path.getmtime(dst) >= os.path.getmtime(src):
            continue
        tmp = "%s.%d.tmp" % (dst, os.getpid())  # several test processes may share the folder
        subprocess.run(_build().mpy_cross_cmd(exe, src, tmp, name + ".py"), check=True, capture_output=True)
        os.replace(tmp, dst)
    return out


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line naming the mistake, exit 2 (argparse would print the whole usage)
        self.exit(2, "run_host: %s (see --help)\n" % message)


def parse(argv=None):
    ap = _Parser(description=__doc__.split("\n\n")[0])
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
    ap.add_argument("--power-key", metavar="PATH", default=None,
                    help="append the modem power-key pin's changes to PATH (1 pressed, 0 released)")
    ap.add_argument("--root", metavar="DIR", default=None,
                    help="the device's filesystem root here: OTA slots under DIR/ota/ chosen at start as main.py "
                         "does; a board reset exits with status 3 (scripts/host_main.py)")
    default_rt = "micropython" if micropython_bin() else "cpython"
    ap.add_argument("--runtime", choices=("micropython", "cpython"), default=default_rt)
    ap.add_argument("--heap", default=DEFAULT_HEAP,
                    help="MicroPython heap (-X heapsize; default %s, the ESP32's budget)" % DEFAULT_HEAP)
    return ap.parse_args(argv)


def check_paths(args):
    """The user's mistakes that need no firmware to find: a message naming the path and the fix, or None."""
    for flag, path, what in (("--config", args.config, "config file"), ("--secrets", args.secrets, "secrets file")):
        if path is None:
            continue
        if not os.path.exists(path):
            return "%s %s: no such %s (copy config.example.json / secrets.example.json and edit it)" % (
                flag, path, what)
        if not os.path.isfile(path):
            return "%s %s: not a file" % (flag, path)
    for flag, path in (("--modem", args.modem), ("--obd", args.obd), ("--gps", args.gps)):
        if path is not None and not os.path.exists(path):
            return "%s %s: no such port (is the modem plugged in / the simulator started?)" % (flag, path)
    if args.root is not None and not os.path.isdir(args.root):
        return "--root %s: no such folder (the device's filesystem root: a `make build` output, say)" % args.root
    if args.power_key is not None:
        d = os.path.dirname(os.path.abspath(args.power_key))
        if not os.path.isdir(d):
            return "--power-key %s: folder %s does not exist" % (args.power_key, d)
    return None


def cache_file(args):
    """Where the firmware looks for its validated config: configcache.cache_path of the queue folder."""
    from telelogger import configcache  # seed_config_cache put firmware/ on sys.path

    return configcache.cache_path(os.path.abspath(args.store) if args.store else "/tmp/freematics-queue")


def seed_config_cache(args, env):
    """Validate the config here, with the firmware's own validator under CPython, and write the cache the
    firmware reads at boot (as `make deploy` does for the device): its boot then does not import the
    validator. A config the validator refuses is left to the firmware, which says what is wrong."""
    fw_src = os.path.join(ROOT, "firmware")
    if fw_src not in sys.path:
        sys.path.insert(0, fw_src)
    try:
        from telelogger import config, configcache
    except ImportError:
        return False
    if args.runtime == "micropython":
        schema = os.path.join(env["FM_HOST_CWD"], "telelogger", "schema.mpy")  # the tree it runs
    else:
        schema = os.path.join(fw_src, "telelogger", "schema.py")
    path = os.path.abspath(args.config)
    sec = os.path.abspath(args.secrets) if args.secrets else None
    try:
        cfg = config.load(path, sec)
    except Exception:  # noqa: BLE001 - any refusal: the firmware reports it in its own words
        return False
    return configcache.save(cache_file(args), path, sec, cfg, schema=schema)


def main(argv=None):
    args = parse(argv)
    if args.runtime == "micropython" and not micropython_bin():
        sys.exit("run_host: micropython not found (make venv builds it) - or use --runtime cpython")
    problem = check_paths(args)
    if problem:
        print("run_host: %s" % problem, file=sys.stderr)
        sys.exit(2)
    cmd, env, shown = build_command(args)
    if seed_config_cache(args, env):
        print("run_host: config validated here and cached for the firmware (%s)" % cache_file(args), file=sys.stderr)
    if args.runtime == "micropython":
        print("run_host: %s, heap %s" % (interpreter_note(cmd[0], word_bits(cmd[0])), args.heap), file=sys.stderr)
    else:
        print("run_host: CPython %s (no heap limit)" % sys.version.split()[0], file=sys.stderr)
    print("run_host: %s" % shown, file=sys.stderr, flush=True)
    os.chdir(env.pop("FM_HOST_CWD", ROOT))
    os.execvpe(cmd[0], cmd, env)


if __name__ == "__main__":
    main()
