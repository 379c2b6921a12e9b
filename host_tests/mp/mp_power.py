# modem.power: power-key sequencing against a clock-driven modem model (both runtimes).
import asyncio

from at.engine import ATCommandError, ATTimeout
from board.host import FakePin
from modem.power import POWER_TIMING, ModemPower, ModemPowerError
from mptest import Skip, araises


class VClock:
    """Virtual milliseconds: sleeping advances time instantly."""

    def __init__(self):
        self.t = 0

    def ticks_ms(self):
        return self.t

    def diff(self, a, b):
        return a - b

    def since(self, t0):
        return self.t - t0

    async def sleep_ms(self, ms):
        self.t += ms
        await asyncio.sleep(0)


class ModemModel:
    """A SIM7600 as seen from the power key and the AT port.

    A key press of >= on_min_ms switches an off modem on; it answers AT boot_ms after the
    release. A press of >= off_min_ms switches it off. cpof: 'ok' (answers OK and falls
    silent after off_delay_ms), 'error' (ERROR, stays on), 'ignore' (OK, stays on)."""

    def __init__(self, clock, pin, on=False, boot_ms=5000, on_min_ms=100, off_min_ms=2500, cpof="ok", off_delay_ms=300, dead=False):
        self.clock = clock
        self.on = on
        self.ready_at = 0 if on else None
        self.boot_ms = boot_ms
        self.on_min_ms = on_min_ms
        self.off_min_ms = off_min_ms
        self.cpof = cpof
        self.off_delay_ms = off_delay_ms
        self.off_at = None
        self.dead = dead
        self.count = 0  # commands received (kept small: no per-command list on a 64K heap)
        self.first = None
        self.kinds = set()  # {(cmd, timeout_ms)}
        self._press = None
        pin.listeners.append(self._on_pin)

    def _on_pin(self, level, t):
        if level:
            self._press = t
            return
        if self._press is None:
            return
        dur = t - self._press
        self._press = None
        if self.dead:
            return
        if not self.on and dur >= self.on_min_ms:
            self.on = True
            self.ready_at = t + self.boot_ms
        elif self.on and dur >= self.off_min_ms:
            self.on = False
            self.ready_at = None

    def answers(self):
        t = self.clock.t
        if self.off_at is not None and t >= self.off_at:
            self.on = False
            self.off_at = None
            self.ready_at = None
        return self.on and t >= self.ready_at

    async def cmd(self, cmd, timeout_ms=1000):
        self.count += 1
        if self.first is None:
            self.first = cmd
        self.kinds.add((cmd, timeout_ms))
        if not self.answers():
            await self.clock.sleep_ms(timeout_ms)
            raise ATTimeout(cmd, msg="no reply within %d ms" % timeout_ms)
        await self.clock.sleep_ms(10)
        if cmd == "AT+CPOF":
            if self.cpof == "error":
                raise ATCommandError(cmd, msg="ERROR")
            if self.cpof == "ok":
                self.off_at = self.clock.t + self.off_delay_ms
        return object()


def presses(pin):
    """[(start_ms, duration_ms)] of every high period in a FakePin's history."""
    out = []
    start = None
    for level, t in pin.history:
        if level and start is None:
            start = t
        elif not level and start is not None:
            out.append((start, t - start))
            start = None
    assert start is None, "power key left pressed"
    return out


def setup(**kw):
    clock = VClock()
    pin = FakePin(27, 0, clock, "modem_power.pin")
    modem = ModemModel(clock, pin, **kw)
    return clock, pin, modem, ModemPower(pin, modem, clock)


async def test_cold_boot_pulses_until_modem_answers():
    T = POWER_TIMING
    clock, pin, modem, power = setup(boot_ms=5000)
    info = await power.power_on()
    p = presses(pin)
    assert info["already_on"] is False
    assert info["pulses"] == len(p)
    assert len(p) >= 2  # boot_ms is longer than one probe window, so one pulse is not enough
    for _start, dur in p:
        assert dur == T["pulse_ms"], p
    for i in range(1, len(p)):  # one pulse per round: pulse + full probe window
        assert p[i][0] - p[i - 1][0] == T["pulse_ms"] + T["probe_window_ms"], p
    # the first pulse comes after the "already on?" probes, each a full probe timeout
    assert p[0][0] == T["already_on_probes"] * T["probe_timeout_ms"]
    # it stopped pulsing as soon as the modem answered: no pulse after the modem was ready
    assert p[-1][0] < modem.ready_at <= clock.t
    assert modem.answers()
    assert info["ms"] == clock.t
    assert modem.kinds == {("AT", T["probe_timeout_ms"])}


async def test_fast_modem_needs_one_pulse():
    clock, pin, modem, power = setup(boot_ms=1000)
    info = await power.power_on()
    assert info["pulses"] == 1 and len(presses(pin)) == 1
    assert modem.answers()


async def test_already_on_is_not_toggled():
    clock, pin, modem, power = setup(on=True)
    info = await power.power_on()
    assert info == {"already_on": True, "pulses": 0, "ms": clock.t}
    assert presses(pin) == []
    assert [lvl for lvl, _ in pin.history] == [0] * len(pin.history)
    assert modem.on
    assert modem.count == 1


async def test_never_answers_raises_naming_tries_and_time():
    T = POWER_TIMING
    clock, pin, modem, power = setup(dead=True)
    e = await araises(ModemPowerError, power.power_on())
    msg = str(e)
    assert len(presses(pin)) == T["tries"]
    assert ("%d power-key pulses" % T["tries"]) in msg, msg
    assert ("%d ms" % T["pulse_ms"]) in msg, msg
    assert ("over %d ms" % clock.t) in msg, msg
    assert "modem_power.pin" in msg, msg
    # bounded: already-on probes + tries x (pulse + probe window), each window overshoots by < one probe
    bound = T["already_on_probes"] * T["probe_timeout_ms"] + T["tries"] * (T["pulse_ms"] + T["probe_window_ms"] + T["probe_timeout_ms"])
    assert clock.t <= bound


async def test_custom_timing_table_bounds_retries():
    t = dict(POWER_TIMING)
    t["tries"] = 3
    t["pulse_ms"] = 500
    clock = VClock()
    pin = FakePin(27, 0, clock)
    modem = ModemModel(clock, pin, dead=True)
    power = ModemPower(pin, modem, clock, timing=t)
    e = await araises(ModemPowerError, power.power_on())
    assert presses(pin) and [d for _, d in presses(pin)] == [500, 500, 500]
    assert "3 power-key pulses of 500 ms" in str(e)


async def test_power_off_with_cpof():
    clock, pin, modem, power = setup(on=True)
    assert await power.power_off() == "cpof"
    assert presses(pin) == []
    assert not modem.answers()
    assert modem.first == "AT+CPOF"


async def test_power_off_long_pulse_when_cpof_errors():
    T = POWER_TIMING
    clock, pin, modem, power = setup(on=True, cpof="error")
    assert await power.power_off() == "pulse"
    assert [d for _, d in presses(pin)] == [T["off_pulse_ms"]]
    assert not modem.on


async def test_power_off_long_pulse_when_modem_keeps_answering():
    T = POWER_TIMING
    clock, pin, modem, power = setup(on=True, cpof="ignore")
    t0 = clock.t
    assert await power.power_off() == "pulse"
    p = presses(pin)
    assert [d for _, d in p] == [T["off_pulse_ms"]]
    # it waited the silence window for the modem to stop answering before pulsing
    assert p[0][0] - t0 >= T["off_silence_window_ms"]
    assert not modem.on


async def test_power_off_of_an_off_modem_does_not_pulse():
    clock, pin, modem, power = setup(on=False)
    assert await power.power_off() == "already_off"
    assert presses(pin) == []
    assert not modem.on


async def test_power_off_failure_message():
    clock, pin, modem, power = setup(on=True, cpof="ignore", off_min_ms=10**9)
    e = await araises(ModemPowerError, power.power_off())
    assert "AT+CPOF (OK)" in str(e) and "2510 ms" in str(e), str(e)


async def test_on_off_on_cycle():
    clock, pin, modem, power = setup(boot_ms=800)
    assert (await power.power_on())["pulses"] == 1
    assert await power.power_off() == "cpof"
    info = await power.power_on()
    assert info["already_on"] is False and info["pulses"] == 1
    assert len(presses(pin)) == 2


async def test_with_the_real_engine_and_the_sim7600_simulator():
    import sys

    if sys.implementation.name != "cpython":
        raise Skip("CPython only: the SIM7600 simulator (host_tests/peers) is CPython code")
    from at.engine import ATEngine
    from core.compat import Clock
    from peers.sim7600 import Sim7600, SimStream

    # boot delays scaled by 0.01 (the PWRKEY thresholds are not); AT+CPOF -> off after 30 ms, so its OK
    # is read before the simulated power-down drops pending output
    sim = Sim7600(powered=False, time_scale=0.01, delays={"cpof": 3000})
    clock = Clock()
    pin = FakePin(27, 0, clock, "modem_power.pin")
    pin.listeners.append(lambda level, t: sim.power_key(level))
    at = ATEngine(SimStream(sim), clock)
    at.start()
    try:
        power = ModemPower(pin, at, clock)
        info = await power.power_on()
        assert info["already_on"] is False and info["pulses"] >= 1, info
        assert sim.power != "off"
        assert (await power.power_on())["already_on"] is True
        assert len(presses(pin)) == info["pulses"]  # the running modem was not toggled
        assert await power.power_off() == "cpof"
        assert sim.power == "off"
        assert len(presses(pin)) == info["pulses"]
    finally:
        at.stop()
        sim.close()
