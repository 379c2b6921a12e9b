"""elm327-emulator (PyPI `elm327-emulator`, the `elm` command) on a pty, for OBD tests.

    with ElmPeer("car", dtcs=["0133", "4123"]) as peer:
        SerialPath(peer.path) ...

`elm -s SCENARIO -b FILE` writes the pty path as the first line of FILE and then reads
emulator commands (Python statements included) from stdin. Stored DTCs live in the
module list `elm.obd_message.DTC_STORED` (two bytes each, e.g. "0133" = P0133): they are
set through stdin before the test starts, and a marker echoed back into FILE says when.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time

READY = "ELM_PEER_READY"


def elm_bin():
    exe = os.path.join(os.path.dirname(sys.executable), "elm")
    if os.path.exists(exe):
        return exe
    exe = shutil.which("elm")
    if not exe:
        raise RuntimeError("elm not found: pip install elm327-emulator")
    return exe


class ElmPeer:
    def __init__(self, scenario="car", dtcs=None, timeout=30.0):
        self.scenario = scenario
        self.dtcs = list(dtcs or [])
        self.timeout = timeout
        self.proc = None
        self.path = None
        self._dir = None

    def start(self):
        self._dir = tempfile.mkdtemp(prefix="elm_peer_")
        out = os.path.join(self._dir, "batch.txt")
        self.proc = subprocess.Popen(
            [elm_bin(), "-s", self.scenario, "-b", out],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        cmds = "import elm.obd_message as _m; _m.DTC_STORED[:] = %r\necho %s\n" % (self.dtcs, READY)
        self.proc.stdin.write(cmds.encode())
        self.proc.stdin.flush()
        deadline = time.monotonic() + self.timeout
        text = ""
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("elm exited with %s: %s" % (self.proc.returncode, text))
            try:
                with open(out) as f:
                    text = f.read()
            except FileNotFoundError:
                text = ""
            if READY in text:
                first = text.split("\n", 1)[0].strip()
                if not first.startswith("/dev/"):
                    raise RuntimeError("elm batch file does not start with a pty path: %r" % text[:200])
                self.path = first
                return self
            time.sleep(0.02)
        self.stop()
        raise RuntimeError("elm did not start within %.0f s: %r" % (self.timeout, text[:400]))

    def stop(self):
        p, self.proc = self.proc, None
        if p is not None:
            try:
                p.stdin.close()
            except OSError:
                pass
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(5)
        if self._dir:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
