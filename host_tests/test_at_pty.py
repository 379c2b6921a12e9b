"""The AT engine under the real MicroPython interpreter (a small heap: 76K on the 64-bit host) over a pty, against
the SIM7600 simulator: boot URCs arriving unasked, echo on then off, '>' data entry of a certificate
with CR/LF, deferred results, CMQTT and +CME errors with their meanings, garbage and a URC inside a
reply, a raw body with CR/LF, a timeout followed by a late reply, and a reboot in the middle of a
command. The same checks run on CPython (SimStream) through the same script."""
import json
import os
import subprocess
import sys

import pytest

from mphost import ROOT, compile_tree, firmware_path, micropython_bin
from peers.sim7600 import Sim7600, SimPty, fmt_urc

SCRIPT = os.path.join(ROOT, "host_tests", "mpscripts", "at_over_pty.py")
PAYLOAD = b'{\r\n "m": "OK"\r\n}\r\nERROR\r\n'


class FaultSim(Sim7600):
    """The simulator plus test-only commands that trigger faults at a known point."""

    COMMANDS = dict(Sim7600.COMMANDS, **{"+XGARBAGE": "cmd_xgarbage", "+XSILENT": "cmd_xsilent", "+XREBOOT": "cmd_xreboot"})

    def cmd_xgarbage(self, now, cmd, delay):
        self.garbage(b"\xff\xfe\x00noise")
        self.partial_line(b"\r\n+CMQTTR")
        self._emit_urc(b"\r\n" + b"\r\n+CMQTTRXSTART: 0,5,%d\r\n" % len(PAYLOAD) + b"\r\n+CMQTTRXTOPIC: 0,5\r\na/b/c"
                       + b"\r\n+CMQTTRXPAYLOAD: 0,%d\r\n" % len(PAYLOAD) + PAYLOAD + b"\r\n+CMQTTRXEND: 0\r\n")
        self.urc_in_next_reply("+CMQTTCONNLOST: 0,1")
        self.ok(now, ["+XGARBAGE: 1", "+XGARBAGE: 2"], delay=delay)

    def cmd_xsilent(self, now, cmd, delay):
        self._reply(now, b"\r\n+XSILENT: late\r\n\r\nOK\r\n", delay=1000)  # long after the caller gave up

    def cmd_xreboot(self, now, cmd, delay):
        self._at(now + 20 * self.time_scale, lambda: self.reboot())


def _checks(out):
    res = {}
    for line in out.splitlines():
        if line.startswith("CHECK "):
            _, name, v = line.split(" ", 2)
            res[name] = json.loads(v)
    return res


def _assert_checks(c, out):
    assert c.get("boot") == "PB DONE", out
    assert c["boot_urcs"] == ["SMS DONE"]
    assert c["ati"]["echo"] is True and any(x.startswith("Model:") for x in c["ati"]["lines"])
    assert c["echo_off"] is False
    assert '+CCERTLIST: "t.pem"' in c["certlist"]
    assert c["start_result"] == "0"
    assert c["start_again"] == [23, "network is opened"]
    # the service is started and client 0 was never acquired (no AT+CMQTTACCQ): the module answers 20 before it
    # would look at the connection (11 "no connection" is for an acquired client that is not connected)
    assert c["topic_unacquired"] == [20, "client not acquired"], c["topic_unacquired"]
    assert c["cme"][1], c["cme"]
    g = c["garbage"]
    # the reply keeps its own lines in order; noise may stay in it, but no other command's '+' line does
    assert [x for x in g["lines"] if x.startswith("+")] == ["+XGARBAGE: 1", "+XGARBAGE: 2"], g
    assert g["stray"] >= 3  # +CMQTTR (cut), +CMQTTRXSTART, +CMQTTRXEND: unregistered URCs, not reply lines
    assert c["garbage"]["urcs"] == ["+CMQTTCONNLOST: 0,1"]
    assert c["garbage"]["rx"] == [PAYLOAD.decode()]
    assert "AT+XSILENT" in c["timeout"] and "300 ms" in c["timeout"]
    assert c["after_timeout"] and c["after_timeout"][0].startswith("+CSQ:"), c["after_timeout"]
    assert "AT+XREBOOT" in c["reboot"] and "rebooted" in c["reboot"]
    assert c["after_reboot"]["echo"] is True  # a rebooted module has echo on again


def _run_against_sim(argv, env, cwd=None):
    """Start the script on a fresh pty and power the simulated module on only once the script has
    opened the port: the boot URCs (RDY ... PB DONE) then arrive while the engine listens, whatever
    the start-up time of the interpreter (opening a tty may flush input that arrived before)."""
    sim = FaultSim(time_scale=0.05, powered=False)
    pty = SimPty(sim)
    try:
        p = subprocess.Popen(argv + ([] if "MODEM" in env else [pty.path]), env=dict(env, MODEM=pty.path), cwd=cwd,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        first = []
        for line in p.stdout:
            first.append(line)
            if line.startswith("READY"):
                sim.power_on()
                break
        rest, _ = p.communicate(timeout=120)
        return p.returncode, "".join(first) + rest
    finally:
        pty.close()
        sim.close()


# The engine, the scenario script, asyncio and the stream need about 63K of the 64-bit unix port's
# heap (objects are about twice the ESP32's); 76K keeps the run 20% clear of MemoryError, so the
# result does not depend on one run's heap layout.
AT_PTY_HEAP = os.environ.get("AT_PTY_HEAP", "76K")


@pytest.mark.micropython
def test_engine_over_pty_under_micropython_small_heap():
    # Script and firmware precompiled, as on the device (.mpy or frozen): compiling them from source
    # inside the small heap would eat it, and that is not what runs on the ESP32.
    cache = compile_tree(os.path.dirname(SCRIPT), os.path.join(ROOT, "build", "mpscripts"))
    fw = firmware_path()
    if not any(f.endswith(".mpy") for f in os.listdir(os.path.join(fw, "at"))):
        fw = compile_tree(fw, os.path.join(ROOT, "build", "mpfirmware"))
    env = dict(os.environ)
    env["MICROPYPATH"] = ":".join([fw, cache, ROOT, ".frozen"])
    env["MODEM"] = ""  # set by _run_against_sim
    rc, out = _run_against_sim([micropython_bin(), "-X", "heapsize=%s" % AT_PTY_HEAP, "-c", "import at_over_pty"], env, cwd=cache)
    assert rc == 0, out
    c = _checks(out)
    _assert_checks(c, out)
    print("MicroPython heap after the run:", c.get("mem"))


def test_engine_over_pty_under_cpython():
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "firmware"))
    rc, out = _run_against_sim([sys.executable, SCRIPT], env)
    assert rc == 0, out
    _assert_checks(_checks(out), out)


def test_fmt_urc_is_the_module_framing():
    assert fmt_urc("RDY") == b"\r\nRDY\r\n"
