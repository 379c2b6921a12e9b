# modem.power: power-key sequencing against a clock-driven modem model (both runtimes).
import asyncio

from at.engine import ERROR, TIMEOUT, ATError
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
            raise ATError(cmd, msg="no reply within %d ms" % timeout_ms, kind=TIMEOUT)
        await self.clock.sleep_ms(10)
        if cmd == "AT+CPOF":
            if self.cpof == "error":
                raise ATError(cmd, msg="ERROR", kind=ERROR)
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


class RdyModel(ModemModel):
    """ModemModel behind an engine that can wait for a URC: RDY is printed when the boot ends."""

    def __init__(self, clock, pin, **kw):
        ModemModel.__init__(self, clock, pin, **kw)
        self.rdy_waits = 0

    async def wait_urc(self, prefix, timeout_ms):
        assert prefix == "RDY"
        self.rdy_waits += 1
        t = self.clock.t
        if self.on and self.ready_at is not None and t <= self.ready_at <= t + timeout_ms:
            await self.clock.sleep_ms(self.ready_at - t)
            return "RDY"
        await self.clock.sleep_ms(timeout_ms)
        raise ATError("(waiting for RDY)", msg="not received within %d ms" % timeout_ms, kind=TIMEOUT)


def bound_on(T):
    """The longest ensure_on may take: the probes, then per press its pulse and the boot wait, which
    overshoots by at most one probe."""
    return T["already_on_probes"] * T["probe_timeout_ms"] + T["tries"] * (T["pulse_ms"] + T["boot_wait_ms"] + T["probe_timeout_ms"])


async def test_cold_boot_one_press_then_waits_for_the_boot():
    T = POWER_TIMING
    clock, pin, modem, power = setup(boot_ms=12000)  # a SIM7600 answers ~12 s after the press
    assert await power.ensure_on() is True
    p = presses(pin)
    assert len(p) == 1 and p[0][1] == T["pulse_ms"] and T["pulse_ms"] >= 100, p  # >= 100 ms: hardware manual
    assert pin.history[0][0] == 0  # the key went to its idle level first
    # the press comes after the short "already on?" probes, each one probe timeout
    assert p[0][0] == T["already_on_probes"] * T["probe_timeout_ms"]
    assert modem.answers() and modem.ready_at <= clock.t <= modem.ready_at + T["rdy_slice_ms"] + T["probe_timeout_ms"]
    assert power.last == {"already_on": False, "pulses": 1, "ms": clock.t}
    assert "after 1 press" in power.reason, power.reason
    assert modem.kinds == {("AT", T["probe_timeout_ms"])}  # only short AT probes


async def test_off_modem_answers_nothing_until_the_press():
    clock, pin, modem, power = setup(boot_ms=1000)
    assert await power.probe() is False and await power.probe() is False  # the fake really starts off
    assert presses(pin) == []
    assert await power.ensure_on() is True and len(presses(pin)) == 1
    assert await power.probe() is True


async def test_rdy_ends_the_wait_at_once():
    clock = VClock()
    pin = FakePin(27, 0, clock, "modem_power.pin")
    modem = RdyModel(clock, pin, boot_ms=11100)
    power = ModemPower(pin, modem, clock)
    assert await power.ensure_on() is True
    assert modem.rdy_waits >= 1
    assert clock.t <= modem.ready_at + 10, (clock.t, modem.ready_at)  # the probe right after RDY answered


async def test_boot_longer_than_one_wait_gets_a_second_press():
    T = POWER_TIMING
    clock, pin, modem, power = setup(boot_ms=T["boot_wait_ms"] + 3000)
    assert await power.ensure_on() is True
    p = presses(pin)
    assert len(p) == 2 and p[1][0] - p[0][0] >= T["pulse_ms"] + T["boot_wait_ms"], p
    assert power.last["pulses"] == 2


async def test_already_on_is_not_toggled():
    clock, pin, modem, power = setup(on=True)
    assert await power.ensure_on() is True
    assert power.last == {"already_on": True, "pulses": 0, "ms": clock.t}
    assert "already on" in power.reason
    assert presses(pin) == []
    assert [lvl for lvl, _ in pin.history] == [0] * len(pin.history)
    assert modem.on and modem.count == 1
    assert (await power.power_on())["already_on"] is True


async def test_never_answers_is_false_with_a_reason_and_bounded():
    T = POWER_TIMING
    clock, pin, modem, power = setup(dead=True)
    assert await power.ensure_on() is False
    msg = power.reason
    assert len(presses(pin)) == T["tries"]
    assert ("%d power-key presses of %d ms" % (T["tries"], T["pulse_ms"])) in msg, msg
    assert ("over %d ms" % clock.t) in msg and "modem_power.pin" in msg and "polarity" in msg, msg
    assert power.last is None
    assert clock.t <= bound_on(T) and clock.t <= 70000  # about a minute, as the official 30 x 2.2 s
    e = await araises(ModemPowerError, power.power_on())
    assert "power-key presses" in str(e)


async def test_custom_timing_overrides_only_what_it_names():
    clock = VClock()
    pin = FakePin(27, 0, clock)
    modem = ModemModel(clock, pin, dead=True)
    power = ModemPower(pin, modem, clock, timing={"tries": 2, "pulse_ms": 500, "boot_wait_ms": 3000})
    assert await power.ensure_on() is False
    assert [d for _, d in presses(pin)] == [500, 500]
    assert "2 power-key presses of 500 ms" in power.reason
    assert power.t["probe_timeout_ms"] == POWER_TIMING["probe_timeout_ms"]


async def test_power_off_with_cpof():
    clock, pin, modem, power = setup(on=True)
    assert await power.power_off() == "cpof"
    assert presses(pin) == []
    assert not modem.answers()
    assert modem.first == "AT+CPOF"


async def test_power_off_long_press_only_when_cpof_failed_and_it_still_answers():
    T = POWER_TIMING
    clock, pin, modem, power = setup(on=True, cpof="error")
    t0 = clock.t
    assert await power.power_off() == "pulse"
    p = presses(pin)
    assert [d for _, d in p] == [T["off_pulse_ms"]]
    assert p[0][0] - t0 >= T["off_silence_window_ms"]  # it waited for silence before pressing
    assert not modem.on


async def test_power_off_never_presses_a_modem_that_accepted_cpof():
    # finding 12: OK to AT+CPOF but still answering after the wait: it is shutting down, and a
    # 2.5 s press then could switch it back on. Refuse to press and say so.
    T = POWER_TIMING
    clock, pin, modem, power = setup(on=True, cpof="ignore")
    e = await araises(ModemPowerError, power.power_off())
    assert presses(pin) == []
    assert "OK to AT+CPOF" in str(e) and "not pressed" in str(e) and ("%d ms" % T["off_silence_window_ms"]) in str(e), str(e)


async def test_slow_cpof_shutdown_inside_the_window_is_not_pressed():
    clock, pin, modem, power = setup(on=True, off_delay_ms=POWER_TIMING["off_silence_window_ms"] - 1000)
    assert await power.power_off() == "cpof"
    assert presses(pin) == [] and not modem.answers()


async def test_power_off_of_an_off_modem_does_not_press():
    clock, pin, modem, power = setup(on=False)
    assert await power.power_off() == "already_off"
    assert presses(pin) == []
    assert not modem.on


async def test_power_off_failure_message():
    clock, pin, modem, power = setup(on=True, cpof="error", off_min_ms=10**9)
    e = await araises(ModemPowerError, power.power_off())
    assert "AT+CPOF (failed)" in str(e) and "2510 ms" in str(e) and "modem_power.pin" in str(e), str(e)


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
        assert await power.ensure_on() is True, power.reason  # the simulator starts powered off
        info = power.last
        assert info["already_on"] is False and info["pulses"] == 1, info  # one press, then RDY
        assert sim.power != "off"
        assert (await power.power_on())["already_on"] is True
        assert len(presses(pin)) == info["pulses"]  # the running modem was not toggled
        assert await power.power_off() == "cpof"
        assert sim.power == "off"
        assert len(presses(pin)) == info["pulses"]
    finally:
        at.stop()
        sim.close()
