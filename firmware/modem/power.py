# Modem power-key sequencing (SIM7600 on the Freematics ONE+ and similar boards).
#
#   power = ModemPower(board.modem_power_pin(), at, clock)
#   info = await power.power_on()     # {'already_on': bool, 'pulses': n, 'ms': elapsed}
#   how = await power.power_off()     # 'cpof' | 'pulse' | 'already_off'
#
# The pin is a logical pin (board.ActivePin): value(1) = key pressed, whatever the wiring
# polarity. Whether the modem is on is only ever decided by asking it (`AT`), never by a
# flag: power_on() probes first and does not toggle a modem that already answers.
from at.engine import ATError, ATTimeout

# All timings in one table. Source: stanleyhuangyc/Freematics @9b0a68d,
# libraries/FreematicsPlus (FreematicsPlus.cpp xbTogglePower, FreematicsNetwork.cpp
# CellSIMCOM::begin/end/check), summarised in shared/reference/freematics-one-plus.md §1.
POWER_TIMING = {
    "pulse_ms": 200,  # xbTogglePower(200): key HIGH 200 ms, then LOW (power on)
    "tries": 30,  # CellSIMCOM::begin: up to 30 pulse+probe rounds
    "probe_window_ms": 2000,  # check(2000): keep probing for up to 2 s after each pulse
    "probe_timeout_ms": 250,  # check(): each AT waits 250 ms for OK
    "already_on_probes": 2,  # ours: probes before the first pulse, to leave a running modem alone
    "off_cmd_timeout_ms": 1000,  # sendCommand() default timeout, used for AT+CPOF
    "off_pulse_ms": 2510,  # xbTogglePower(2510) when AT+CPOF fails
    # ours: how long the modem may keep answering after AT+CPOF / the long pulse before we
    # call it a failure (the official code waits a fixed 1500 ms instead of checking).
    "off_silence_window_ms": 6000,
    "off_probe_interval_ms": 500,  # ours: pause between AT probes while waiting for silence
}


class ModemPowerError(Exception):
    """The modem could not be switched on or off; the message says what was tried."""


class ModemPower:
    def __init__(self, pin, at, clock, timing=POWER_TIMING, log=None):
        self.pin = pin
        self.at = at
        self.clock = clock
        self.t = timing
        self.log = log
        self.last = None  # result of the last power_on()

    def _log(self, fmt, *args):
        if self.log:
            self.log.info(fmt, *args)

    def _pin_name(self):
        n = getattr(self.pin, "name", "")
        return (" (%s)" % n) if n else ""

    async def probe(self, timeout_ms=None):
        """One `AT`: True when the modem answered anything (OK, ERROR, a reboot notice),
        False when it stayed silent for timeout_ms."""
        try:
            await self.at.cmd("AT", timeout_ms=timeout_ms or self.t["probe_timeout_ms"])
            return True
        except ATTimeout:
            return False
        except ATError:
            return True  # it is talking, so it is powered

    async def _probe_window(self, window_ms):
        """Probe until the modem answers or window_ms has passed on the clock."""
        c = self.clock
        t0 = c.ticks_ms()
        while True:
            if await self.probe():
                return True
            if c.diff(c.ticks_ms(), t0) >= window_ms:
                return False

    async def pulse(self, ms):
        """Press the power key for `ms`, then release it."""
        self.pin.value(1)
        try:
            await self.clock.sleep_ms(ms)
        finally:
            self.pin.value(0)

    async def power_on(self):
        """Switch the modem on and return once it answers `AT`.

        A modem that already answers is left alone (already_on). Otherwise up to `tries`
        rounds of: a short power-key pulse, then probing for `probe_window_ms`. Raises
        ModemPowerError naming the pulses and the time spent when it never answers."""
        t = self.t
        c = self.clock
        t0 = c.ticks_ms()
        self.pin.value(0)  # key released before anything else
        for _ in range(t["already_on_probes"]):
            if await self.probe():
                self.last = {"already_on": True, "pulses": 0, "ms": c.diff(c.ticks_ms(), t0)}
                self._log("modem already on")
                return self.last
        for n in range(1, t["tries"] + 1):
            await self.pulse(t["pulse_ms"])
            if await self._probe_window(t["probe_window_ms"]):
                self.last = {"already_on": False, "pulses": n, "ms": c.diff(c.ticks_ms(), t0)}
                self._log("modem on after %d pulse(s), %d ms", n, self.last["ms"])
                return self.last
        ms = c.diff(c.ticks_ms(), t0)
        raise ModemPowerError(
            "modem did not answer AT after %d power-key pulses of %d ms over %d ms%s: check the modem supply, "
            "the power-key wiring and its polarity (modem_power.active in the board file)"
            % (t["tries"], t["pulse_ms"], ms, self._pin_name())
        )

    async def _silent_within(self, window_ms):
        """True once a probe goes unanswered within window_ms (the modem is off)."""
        c = self.clock
        t0 = c.ticks_ms()
        while True:
            if not await self.probe():
                return True
            if c.diff(c.ticks_ms(), t0) >= window_ms:
                return False
            await c.sleep_ms(self.t["off_probe_interval_ms"])

    async def power_off(self):
        """Switch the modem off: AT+CPOF, then wait for it to fall silent; if the command
        fails or it keeps answering, the long power-key pulse. A modem that does not
        answer at all is already off and is not pulsed (a pulse would switch it on)."""
        t = self.t
        self.pin.value(0)
        try:
            await self.at.cmd("AT+CPOF", timeout_ms=t["off_cmd_timeout_ms"])
            cpof_ok = True
        except ATTimeout:
            cpof_ok = False
            if not await self.probe():
                self._log("modem already off")
                return "already_off"
        except ATError:
            cpof_ok = False
        if cpof_ok and await self._silent_within(t["off_silence_window_ms"]):
            self._log("modem off (AT+CPOF)")
            return "cpof"
        await self.pulse(t["off_pulse_ms"])
        if await self._silent_within(t["off_silence_window_ms"]):
            self._log("modem off (power-key pulse)")
            return "pulse"
        raise ModemPowerError(
            "modem still answers AT after AT+CPOF%s and a %d ms power-key pulse%s"
            % (" (OK)" if cpof_ok else " (failed)", t["off_pulse_ms"], self._pin_name())
        )
