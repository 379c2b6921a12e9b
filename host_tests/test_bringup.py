"""Cold start on CPython through the strict SIM7600 simulator and the real AT engine: the module
starts powered off, ModemPower.ensure_on presses the key, modem.sim7600 brings it up (AT+CTZU=1,
registration, network time) with modem.bringup loaded only while it runs; tls: true without a CA
is refused before any AT+CSSLCFG, and is not retried."""
import asyncio
import io
import sys

import pytest

from at.engine import ATEngine
from board.host import FakePin
from core.compat import Clock
from modem.power import ModemPower
from modem.sim7600 import Sim7600 as Modem
from modem.tls import TlsSetupError
from net import cellular as NC
from peers.sim7600 import Sim7600, SimStream

SCALE = 0.01


def _run(sim, fn):
    async def main():
        at = ATEngine(SimStream(sim), Clock(), poll_ms=1)
        at.start()
        try:
            return await fn(at)
        finally:
            at.stop()
            sim.close()

    return asyncio.run(main())


def test_cold_start_press_bring_up_and_network_time():
    log = io.StringIO()
    sim = Sim7600(powered=False, time_scale=SCALE, log=log)
    clock = Clock()
    pin = FakePin(27, 0, clock, "modem_power.pin")
    pin.listeners.append(lambda level, t: sim.power_key(level))

    async def go(at):
        p = ModemPower(pin, at, clock)
        assert await p.ensure_on() is True, p.reason
        m = Modem(at, clock, {"poll_ms": 20})
        info = await m.bring_up()
        return p, info

    p, info = _run(sim, go)
    assert p.last["pulses"] == 1 and not p.last["already_on"]
    assert info["reg"][2] in (1, 5) and info["time"][0] >= 2020, info
    text = log.getvalue()
    assert "AT+CTZU=1" in text and text.index("AT+CTZU=1") < text.index("AT+CREG?")
    assert "modem.bringup" not in sys.modules and "modem.netreg" not in sys.modules


def test_cold_start_without_the_press_never_answers():
    sim = Sim7600(powered=False, time_scale=SCALE)

    async def go(at):
        m = Modem(at, Clock(), {"poll_ms": 20, "boot_timeout_ms": 1500})
        with pytest.raises(Exception) as e:
            await m.bring_up()
        return e.value

    e = _run(sim, go)
    assert getattr(e, "kind", None) == "not_responding", e


def test_tls_without_ca_refuses_at_once_and_names_certs_ca():
    log = io.StringIO()
    sim = Sim7600(powered=True, time_scale=SCALE, log=log)

    async def go(at):
        pub = NC.CellularPublisher(at, Clock(), host="broker.example", port=8883, tls=True, modem_cfg={"poll_ms": 20},
                                   backoff_ms=10, max_attempts=3)
        with pytest.raises(TlsSetupError) as e:
            await pub.connect()
        return pub, e.value

    pub, e = _run(sim, go)
    assert e.kind == "no_ca" and "certs.ca" in str(e) and "tls_verify" in str(e)
    text = log.getvalue()
    assert "AT+CSSLCFG" not in text and "AT+CMQTTCONNECT" not in text  # no silent authmode 0
    assert text.count("AT+CPIN?") == 1  # fatal: no second bring-up
