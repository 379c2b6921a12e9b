"""scripts/hwcheck.py against the SIM7600 simulator, elm327-emulator and a tiny fake Freematics
co-processor (ATI -> "OBD2USART V1.4")."""
import io
import os
import select
import sys
import threading
import tty

import pytest

from mphost import ROOT

sys.path.insert(0, os.path.join(ROOT, "scripts"))
import hwcheck  # noqa: E402
from peers.elm_peer import ElmPeer  # noqa: E402
from peers.sim7600 import Sim7600, SimPty  # noqa: E402

sys.path.insert(0, os.path.join(ROOT, "firmware"))
from modem import codes  # noqa: E402

FAST = ["--timeout", "3", "--reg-timeout", "5", "--gnss-timeout", "5"]


def run(*args):
    out = io.StringIO()
    rc = hwcheck.main(list(args), out=out)
    text = out.getvalue()
    lines = {}
    for ln in text.splitlines():
        parts = ln.split(None, 1)
        if parts and parts[0] in ("PASS", "FAIL", "WARN", "SKIP", "INFO"):
            status, rest = parts[0], parts[1]
            for name in ("board model", "board file", "modem", "model", "SIM", "signal", "registration", "GNSS fix", "OBD protocol", "battery"):
                if rest.startswith(name + " ") and name not in lines:
                    lines[name] = (status, rest[len(name) :].strip())
                    break
    return rc, text, lines


@pytest.fixture
def sim():
    made = []

    def make(**kw):
        s = Sim7600(ready=True, time_scale=0.01, **kw)
        p = SimPty(s)
        made.append((s, p))
        return s, p

    yield make
    for s, p in made:
        p.close()
        s.close()


@pytest.fixture(scope="module")
def elm():
    with ElmPeer("car") as peer:
        yield peer


class FakeCoproc:
    """A pty answering like the ONE+ co-processor with the engine off."""

    REPLIES = {b"ATI": b"OBD2USART V1.4", b"ATZ": b"OBD2USART V1.4", b"ATE0": b"OK", b"ATH0": b"OK", b"ATRV": b"12.4V"}

    def __init__(self):
        self.m, self.s = os.openpty()
        tty.setraw(self.s)
        self.path = os.ttyname(self.s)
        self._stop = False
        self._t = threading.Thread(target=self._serve, daemon=True)
        self._t.start()

    def _serve(self):
        buf = b""
        while not self._stop:
            r, _, _ = select.select([self.m], [], [], 0.05)
            if not r:
                continue
            try:
                buf += os.read(self.m, 256)
            except OSError:
                return
            while b"\r" in buf:
                cmd, buf = buf.split(b"\r", 1)
                reply = self.REPLIES.get(cmd.strip().upper(), b"NO DATA")
                os.write(self.m, reply + b"\r\r>")

    def close(self):
        self._stop = True
        self._t.join(2)
        os.close(self.m)
        os.close(self.s)


def test_everything_passes_on_simulators(sim, elm):
    s, p = sim()
    s.set_position(48.137, 11.575)
    rc, text, lines = run("--modem", p.path, "--obd", elm.path, "--board", "esp32-sim7600", *FAST)
    for name in ("modem", "model", "SIM", "signal", "registration", "GNSS fix", "OBD protocol", "battery"):
        assert lines[name][0] == "PASS", text
    assert lines["board model"][0] == "INFO" and "ELM327" in lines["board model"][1]  # generic adapter, example board
    assert "48.13700, 11.57500" in lines["GNSS fix"][1]
    assert "MQTT over SSL possible" in lines["model"][1]
    assert "dBm" in lines["signal"][1] and "V (ATRV)" in lines["battery"][1]
    assert "PIDs supported" in lines["OBD protocol"][1]
    assert rc == 0, text
    assert "0 failed" in text


def test_firmware_without_ssl_fails_with_the_fix(sim):
    s, p = sim(firmware=codes.FIRMWARE_NO_SSL[0] + "-H")
    rc, text, lines = run("--modem", p.path, "--gnss", "none", *FAST)
    assert lines["model"][0] == "FAIL" and "no MQTT over SSL" in lines["model"][1], text
    assert codes.FIRMWARE_NO_SSL_FIX in text
    assert lines["GNSS fix"][0] == "SKIP"
    assert rc == 1


def test_no_gnss_fix_and_no_registration(sim):
    s, p = sim(network="denied")
    rc, text, lines = run("--modem", p.path, "--timeout", "3", "--reg-timeout", "3", "--gnss-timeout", "1")
    assert lines["registration"][0] == "FAIL" and "denied" in lines["registration"][1], text
    assert lines["GNSS fix"][0] == "FAIL" and "no fix" in lines["GNSS fix"][1]
    assert "fix: GNSS antenna" in text
    assert lines["board model"][0] == "SKIP" and "--obd" in lines["board model"][1]
    assert rc == 1


def test_silent_modem_fails_and_dependents_are_not_checked():
    m, s = os.openpty()
    tty.setraw(s)
    try:
        rc, text, lines = run("--modem", os.ttyname(s), "--timeout", "1", "--gnss", "modem")
    finally:
        os.close(m)
        os.close(s)
    assert lines["modem"][0] == "FAIL" and "no answer to AT" in lines["modem"][1], text
    assert "fix: power the modem on" in text
    for name in ("model", "SIM", "signal", "registration", "GNSS fix"):
        assert lines[name] == ("SKIP", "not checked (modem not answering)"), (name, text)
    assert rc == 1


def test_freematics_coproc_devtype_matches_board():
    fc = FakeCoproc()
    try:
        rc, text, lines = run("--obd", fc.path, "--board", "oneplus-b", "--timeout", "2")
        assert lines["board model"][0] == "PASS", text
        assert "devType 14" in lines["board model"][1] and "oneplus-b" in lines["board model"][1]
        assert lines["battery"] == ("PASS", "12.4 V (ATRV)")
        assert lines["OBD protocol"][0] == "FAIL" and "fix: ignition on" in text  # engine off: no ECU
        assert lines["board file"][0] == "INFO" and "modem_power" in lines["board file"][1]
        rc, text, lines = run("--obd", fc.path, "--board", "oneplus-h", "--timeout", "2")
        assert lines["board model"][0] == "FAIL" and "deploy with --board oneplus-b" in text, text
    finally:
        fc.close()


def test_missing_driver_reports_not_checked(monkeypatch, elm):
    monkeypatch.setitem(sys.modules, "obdii.obd", None)  # as if obdii/obd.py did not exist yet
    rc, text, lines = run("--obd", elm.path, "--timeout", "2")
    assert lines["board model"][0] == "SKIP" and "not checked: obdii.obd not available" in lines["board model"][1], text
    assert lines["OBD protocol"][0] == "SKIP"
    assert lines["battery"][0] == "SKIP"
    assert rc == 0  # nothing failed, but nothing passed either


def test_needs_a_port():
    with pytest.raises(SystemExit):
        hwcheck.parse([])
