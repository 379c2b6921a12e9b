"""The simulators start where the device starts (issue 10): switched off, answering nothing, until the power key
is pressed — in process (Sim7600.power_key/pulse), through the power-key file a host board writes
(PowerKeyFollower), and across processes (the pty simulator's --power-key, a firmware process's HostBoard with
power_key=PATH, i.e. run_host.py --power-key PATH)."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from peers.broker import broker  # noqa: F401
from peers.sim7600 import POWER_OFF_PRESS_MS, POWER_ON_PRESS_MS, PowerKeyFollower, Sim7600

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# the firmware's heap in the run_host run: the budget is 96K (run_host's default, issue 9); until the RAM work is
# merged the telelogger does not fit there (POWER_KEY_TEST_HEAP=96K checks it)
E2E_HEAP = os.environ.get("POWER_KEY_TEST_HEAP", "176K")  # the entry path needs 104K today (make bench)
BOOT = b"\r\nRDY\r\n\r\n+CPIN: READY\r\n\r\nSMS DONE\r\n\r\nPB DONE\r\n"


class VSim:
    """A simulator on a virtual clock, and the host's view of its UART."""

    def __init__(self, **kw):
        self.t = [0.0]
        self.sim = Sim7600(clock=lambda: self.t[0], **kw)
        self.out = bytearray()

    def run(self, ms):
        end = self.t[0] + ms
        while True:
            nd = self.sim.next_due_ms()
            if nd is None or nd > end:
                break
            self.t[0] = max(self.t[0], nd)
            self.out += self.sim.read_ready()
        self.t[0] = end
        self.out += self.sim.read_ready()

    def press(self, ms):
        self.sim.pulse(ms, now_ms=self.t[0])
        self.t[0] += ms

    def take(self):
        b = bytes(self.out)
        self.out.clear()
        return b


def test_every_simulator_starts_powered_off_and_answers_nothing():
    v = VSim()
    assert v.sim.power == "off"
    v.sim.feed(b"AT\r")
    v.sim.feed(b"AT+CPOF\r")
    v.run(60000)
    assert v.take() == b"" and v.sim.power == "off" and v.sim.counters["boots"] == 0
    assert v.sim.counters["commands"] == 0  # the bytes were dropped, not parsed


def test_a_press_boots_it_with_the_boot_urcs_and_echo_on():
    v = VSim()
    v.press(POWER_ON_PRESS_MS - 1)  # too short
    v.run(30000)
    assert v.take() == b"" and v.sim.power == "off"
    v.press(200)  # the Freematics xbTogglePower(200)
    assert v.sim.power == "booting"
    v.sim.feed(b"AT\r")  # before RDY the UART is not up: lost
    v.run(9000)
    assert v.take() == b""
    v.run(10000)
    assert v.take() == BOOT  # in order, after the boot time (10 s RDY, SIM, SMS, phone book)
    v.sim.feed(b"AT\r")
    v.run(100)
    assert v.take() == b"AT\r\r\nOK\r\n"  # echo on, as in the seed thread


def test_a_long_press_powers_it_down_with_normal_power_down_and_cpof_too():
    v = VSim(powered=True)
    v.run(20000)
    assert v.take() == BOOT
    v.press(POWER_OFF_PRESS_MS - 100)  # a short press on a running module changes nothing
    v.run(100)
    assert v.sim.power == "on" and v.take() == b""
    v.press(2510)  # the official power-off fallback
    v.run(100)
    assert v.take() == b"\r\nNORMAL POWER DOWN\r\n" and v.sim.power == "off"
    v.sim.feed(b"AT\r")
    v.run(1000)
    assert v.take() == b""
    v.press(200)
    v.run(20000)
    assert v.take() == BOOT and v.sim.counters["boots"] == 2
    v.sim.feed(b"AT+CPOF\r")
    v.run(1000)
    assert v.take() == b"AT+CPOF\r\r\nOK\r\n" and v.sim.power == "off"
    v.sim.feed(b"AT\r")
    v.run(1000)
    assert v.take() == b""


def test_a_long_press_on_an_off_module_switches_it_on():
    v = VSim()
    v.press(POWER_OFF_PRESS_MS + 500)
    assert v.sim.power == "booting"


def test_the_follower_presses_the_key_from_the_file(tmp_path):
    path = tmp_path / "pwrkey"
    path.write_text("1\n0\n")  # history of an earlier run: not replayed
    sim = Sim7600(time_scale=0.001)
    f = PowerKeyFollower(sim, str(path))
    try:
        time.sleep(0.05)
        assert sim.power == "off" and f.events == []
        with open(path, "a") as w:
            w.write("1\n")
            w.flush()
            time.sleep(0.25)
            w.write("0\n")
            w.flush()
        _wait(lambda: sim.power != "off")
        assert [p for _, p in f.events] == [True, False]
        assert f.events[1][0] - f.events[0][0] >= POWER_ON_PRESS_MS
        with open(path, "a") as w:
            w.write("maybe\n")
        _wait(lambda: f.bad)
        assert f.bad == [b"maybe"] and sim.power != "off"
    finally:
        f.close()
        sim.close()


def _wait(cond, timeout=5.0):
    t0 = time.monotonic()
    while not cond():
        assert time.monotonic() - t0 < timeout, "timed out"
        time.sleep(0.01)


# the firmware side of the chain, under the 32-bit MicroPython: the host board writes the key to the file the
# pty simulator (another process) follows; ModemPower presses it, the module boots and answers, CPOF ends it.
HOST_SCRIPT = r"""
import asyncio, sys
from at.engine import ATEngine
from board import load_board
from board.host import HostBoard
from core.compat import Clock
from modem.power import ModemPower

async def main(modem, key):
    clock = Clock()
    board = HostBoard(load_board("oneplus-b", None, ("boards",)), modem=modem, power_key=key)
    at = ATEngine(board.modem_stream(), clock)
    at.start()
    power = ModemPower(board.modem_power_pin(), at, clock)
    info = await power.power_on()
    print("POWER_ON", info["already_on"], info["pulses"])
    r = await at.cmd("AT+CGMR", timeout_ms=2000)
    print("CGMR", r.value("+CGMR:"))
    print("POWER_OFF", await power.power_off())
    at.stop()

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


@pytest.mark.micropython
def test_pty_simulator_follows_a_firmware_process_pressing_the_key(tmp_path):
    from mphost import run_mp

    link, key = str(tmp_path / "modem"), str(tmp_path / "pwrkey")
    sim = subprocess.Popen([sys.executable, os.path.join(ROOT, "host_tests", "peers", "sim7600.py"), "--link", link,
                            "--power-key", key, "--time-scale", "0.02", "--local-broker",
                            "--log", str(tmp_path / "modem.log")],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        first = sim.stdout.readline()
        assert " off, power key from %s" % key in first, first
        script = tmp_path / "host.py"
        script.write_text(HOST_SCRIPT)
        out = run_mp(str(script), [link, key], heap="96K", timeout=120)
        assert "POWER_ON False 1" in out, out  # it was off: one 200 ms press switched it on
        assert "CGMR LE11B02SIM7600M21-A" in out, out
        assert "POWER_OFF cpof" in out, out
        with open(key) as f:
            assert f.read() == "1\n0\n"  # one press: pressed, released
    finally:
        sim.terminate()
        rest = sim.communicate(timeout=10)[0]
    assert sim.returncode == 0, rest
    log = (tmp_path / "modem.log").read_text()
    assert log.index("RDY") < log.index("AT+CGMR")  # nothing was answered before the module booted


def _wait_log(path, pattern, start=0, timeout=120.0):
    """Wait until `pattern` occurs in the transcript at or after offset `start`; its offset."""
    t0 = time.monotonic()
    while True:
        try:
            text = open(path, newline="").read()
        except OSError:
            text = ""
        k = text.find(pattern, start)
        if k >= 0:
            return k
        assert time.monotonic() - t0 < timeout, "no %r in the modem transcript after %d:\n%s" % (
            pattern, start, text[start:][-3000:])
        time.sleep(0.1)


class ColdDevice:
    """The pty simulator process, switched OFF, following the power-key file of a firmware process started by
    run_host.py --power-key (mosquitto behind the simulator)."""

    def __init__(self, tmp_path, broker_port, **extra):
        self.link, self.key, self.log = str(tmp_path / "modem"), str(tmp_path / "pwrkey"), str(tmp_path / "modem.log")
        cfg = tmp_path / "config.json"
        c = {
            "device_id": "COLD01", "topic_prefix": "pk", "encoding": "compact",
            "broker": {"host": "broker.test", "port": 1883, "tls": False},
            "obd": {"enabled": False}, "gnss": {"source": "none"},
            "batch": {"max_records": 1, "max_age_ms": 300}, "intervals": {"battery_ms": 500, "status_ms": 5000},
        }
        c.update(extra)
        cfg.write_text(json.dumps(c))
        self.fw = None
        self.sim = subprocess.Popen(
            [sys.executable, os.path.join(ROOT, "host_tests", "peers", "sim7600.py"), "--link", self.link,
             "--power-key", self.key, "--time-scale", "0.05", "--broker", "127.0.0.1:%d" % broker_port,
             "--log", self.log], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert " off, power key from " in self.sim.stdout.readline()
        self.fw = subprocess.Popen(
            [sys.executable, os.path.join(ROOT, "scripts", "run_host.py"), "--modem", self.link, "--config", str(cfg),
             "--store", str(tmp_path / "queue"), "--power-key", self.key, "--heap", E2E_HEAP, "--duration", "300",
             "--status-ms", "1000"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)

    def presses(self):
        return open(self.key).read().count("1\n")

    def end(self):
        if self.fw is not None:
            self.fw.terminate()
            print(self.fw.communicate(timeout=20)[0][-3000:])
        self.sim.terminate()
        rest = self.sim.communicate(timeout=10)[0]
        assert self.sim.returncode == 0, rest

    def first_publish(self):
        first = _wait_log(self.log, "+CMQTTPUB: 0,0")
        assert _wait_log(self.log, "RDY") < first  # it had to be switched on first
        assert open(self.key).read().startswith("1\n0\n")  # by a press of the key
        return first


@pytest.mark.micropython
def test_run_host_switches_a_cold_modem_on_publishes_and_again_after_an_unasked_rdy(tmp_path, broker):  # noqa: F811
    """Issue 10's 'done when': the pty simulator starts OFF; the firmware via run_host --power-key presses the
    key, brings the module up and publishes; after the module reboots on its own (RDY unasked) it publishes
    again."""
    dev = ColdDevice(tmp_path, broker.port)
    try:
        first = dev.first_publish()
        dev.sim.send_signal(signal.SIGUSR1)  # the module reboots on its own
        rdy = _wait_log(dev.log, "RDY", first)
        _wait_log(dev.log, "+CMQTTPUB: 0,0", rdy)
    finally:
        dev.end()


@pytest.mark.micropython
def test_run_host_presses_the_key_again_when_the_modem_lost_its_power(tmp_path, broker):  # noqa: F811
    """The module loses power mid-run (a brown-out, a loose supply): silent, no URC. Like the official
    CellSIMCOM::begin (up to 30 key presses on every cellular init), the firmware must press the key again
    rather than send AT for ever."""
    dev = ColdDevice(tmp_path, broker.port)
    try:
        dev.first_publish()
        presses = dev.presses()
        dev.sim.send_signal(signal.SIGUSR2)  # power lost: silent until the key is pressed again
        mark = len(open(dev.log, newline="").read())
        rdy = _wait_log(dev.log, "RDY", mark, timeout=180)
        _wait_log(dev.log, "+CMQTTPUB: 0,0", rdy)
        assert dev.presses() > presses
    finally:
        dev.end()


@pytest.mark.micropython
def test_run_host_standby_cycle_powers_the_module_off_and_on_with_its_gnss(tmp_path, broker):  # noqa: F811
    """Issue 10's 'done when', the standby part: parked (no motion for stationary_s), the firmware flushes, sends
    AT+CPOF (the module goes off), and at the heartbeat presses the key again: the module boots (RDY), the modem's
    GNSS is switched on again (AT+CGPS=1,1 after that RDY) and the heartbeat status is published."""
    dev = ColdDevice(tmp_path, broker.port, gnss={"source": "modem"},
                     standby={"stationary_s": 8, "heartbeat_s": 20, "flush_s": 5, "voltage_off": 0, "voltage_wake": 30})
    try:
        first = dev.first_publish()
        _wait_log(dev.log, "AT+CGPS=1,1", 0)
        off = _wait_log(dev.log, "AT+CPOF", first, timeout=120)
        presses = dev.presses()
        rdy = _wait_log(dev.log, "RDY", off, timeout=120)  # the heartbeat switched it on again
        _wait_log(dev.log, "AT+CGPS=1,1", rdy, timeout=60)  # GNSS back on after the power cycle
        _wait_log(dev.log, "+CMQTTPUB: 0,0", rdy, timeout=60)  # the heartbeat status went out
        assert dev.presses() >= presses >= 1
    finally:
        dev.end()
