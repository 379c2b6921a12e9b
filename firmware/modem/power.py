# Modem power-key sequencing (SIM7600 on the Freematics ONE+ and similar boards). Imported only
# where the key is used (boot, standby, hwcheck).
#
#   power = ModemPower(board.modem_power_pin(), at, clock, log=log)
#   if not await power.ensure_on(): log.error(power.reason)   # the boot call: True/False + reason
#   info = await power.power_on()     # the same, raising ModemPowerError; {'already_on', 'pulses', 'ms'}
#   how = await power.power_off()     # 'cpof' | 'pulse' | 'already_off'
#
# The pin is a logical pin (board.ActivePin): value(1) = key pressed, whatever the wiring
# polarity. Whether the modem is on is only ever decided by asking it (`AT`), never by a flag:
# a modem that already answers is never pressed (a press could switch it off).
from at.engine import TIMEOUT, ATError

# All timings in one table. Sources: stanleyhuangyc/Freematics @9b0a68d, libraries/FreematicsPlus
# (FreematicsPlus.cpp xbTogglePower, FreematicsNetwork.cpp CellSIMCOM::begin/end/check; see
# shared/reference/freematics-one-plus.md §1): GPIO27 LOW at boot, a 200 ms HIGH pulse powers on,
# 2510 ms powers off; SIM7600 hardware design: power-on needs a press of >= 100 ms, power-off >= 2.5 s.
POWER_TIMING = {
    "pulse_ms": 200,  # xbTogglePower(200): key pressed 200 ms, then released (power on)
    "probe_timeout_ms": 250,  # check(): each AT waits 250 ms for OK
    "already_on_probes": 2,  # probes before the first press, to leave a running modem alone
    "tries": 3,  # ours: presses before giving up (official: 30 presses 2.2 s apart)
    # ours: after a press, wait this long for RDY or an answer to AT (the SIM7600 prints RDY
    # about 10-15 s after power-on). Bound of ensure_on: the probes + tries x (press + boot wait
    # + one probe); with at.engine a probe after a silent one first resyncs (at.recover._SYNC_MS, 3 s), so a
    # probe of a silent modem takes ~3.3 s: about 80 s in all (official: 30 x 2.2 s = 66 s)
    "boot_wait_ms": 20000,
    "rdy_slice_ms": 1000,  # ours: between AT probes while booting, listen this long for RDY
    "off_cmd_timeout_ms": 1000,  # sendCommand() default timeout, used for AT+CPOF
    "off_pulse_ms": 2510,  # xbTogglePower(2510) when AT+CPOF fails
    # ours: how long the modem may keep answering after AT+CPOF / the long press before it is a
    # failure (the official code waits a fixed 1500 ms instead of checking)
    "off_silence_window_ms": 8000,
    "off_probe_interval_ms": 500,  # ours: pause between AT probes while waiting for silence
}


class ModemPowerError(Exception):
    """The modem could not be switched on or off; the message says what was tried."""


class ModemPower:
    def __init__(self, pin, at, clock, timing=None, log=None):
        self.pin = pin
        self.at = at
        self.clock = clock
        t = dict(POWER_TIMING)
        if timing:
            t.update(timing)
        self.t = t
        self.log = log
        self.last = None  # {'already_on', 'pulses', 'ms'} of the last successful ensure_on()
        self.reason = None  # what the last ensure_on() found, in words

    def _log(self, text):
        if self.log:
            self.log.info("%s", text)

    def _pin_name(self):
        n = getattr(self.pin, "name", "")
        return (" (%s)" % n) if n else ""

    async def probe(self, timeout_ms=None):
        """One `AT`: True when the modem answered anything (OK, ERROR, a reboot notice), False
        when it stayed silent for timeout_ms."""
        try:
            await self.at.cmd("AT", timeout_ms=timeout_ms or self.t["probe_timeout_ms"])
            return True
        except ATError as e:
            return e.kind != TIMEOUT  # an answer of any kind: it is talking, so it is powered

    async def pulse(self, ms):
        """Press the power key for `ms`, then release it."""
        self.pin.value(1)
        try:
            await self.clock.sleep_ms(ms)
        finally:
            self.pin.value(0)

    async def _until(self, value, timeout, ms):
        """Probe until the modem's answering is `value` (True: it answers AT, False: it is silent):
        True, or False after `timeout` ms. Between probes: `ms`, or while waiting for it to answer,
        a wait for RDY of `ms` when the engine can (RDY ends it at once)."""
        c = self.clock
        t0 = c.ticks_ms()
        wait_urc = getattr(self.at, "wait_urc", None) if value else None
        while True:
            if await self.probe() == value:
                return True
            left = timeout - c.diff(c.ticks_ms(), t0)
            if left <= 0:
                return False
            if wait_urc is None:
                await c.sleep_ms(min(ms, left))
                continue
            try:
                await wait_urc("RDY", min(ms, left))
            except ATError as e:
                if e.kind != TIMEOUT:
                    raise

    async def ensure_on(self):
        """The boot call: the key to its idle level, short `AT` probes, and when nothing answers up
        to `tries` presses of pulse_ms, each followed by up to boot_wait_ms for RDY / an answer.
        True when the modem answers; False when it never did. self.reason says which, in words
        (with what to check); self.last has the figures."""
        # a silent modem's probes time out: each next one resyncs first, and the wait for RDY listens:
        # at.recover's and the timeout's exception at.fail's, both imported once (after the first silent
        # probe) for the whole wait, not per probe (less heap churn)
        import sys

        had = [m for m in ("at.recover", "at.fail") if m in sys.modules]
        try:
            t = self.t
            on, n, ms = await wake(self, t)
            if on:
                self.last = dict(zip(("already_on", "pulses", "ms"), (n == 0, n, ms)))
                self.reason = "modem on after %d press(es) of the power key (%d ms)" % (n, ms) if n else "modem already on (%d ms)" % ms
                self._log(self.reason)
                return True
            self.last = None
            self.reason = (
                "modem did not answer AT after %d power-key presses of %d ms over %d ms%s: check the modem supply "
                "(the ONE+ modem needs the OBD port's 12 V), the power-key wiring and its polarity (modem_power.active "
                "in the board file)" % (t["tries"], t["pulse_ms"], ms, self._pin_name())
            )
            if self.log:
                self.log.error("%s", self.reason)
            return False
        finally:
            from core.errors import forget

            for m in ("at.recover", "at.fail"):
                if m not in had:
                    forget(m)

    async def power_on(self):
        """ensure_on() that raises ModemPowerError(reason) instead of returning False; returns self.last."""
        if not await self.ensure_on():
            raise ModemPowerError(self.reason)
        return self.last

    async def power_off(self):
        """AT+CPOF, then wait off_silence_window_ms for the modem to fall silent. The long key press
        (off_pulse_ms) only when it still answers after that wait AND did not answer OK to AT+CPOF:
        a modem that accepted AT+CPOF is shutting down, and a press then can switch it back on.
        A modem that does not answer at all is already off and is not pressed."""
        t = self.t
        self.pin.value(0)
        try:
            await self.at.cmd("AT+CPOF", timeout_ms=t["off_cmd_timeout_ms"])
            cpof_ok = True
        except ATError as e:
            cpof_ok = False
            if e.kind == TIMEOUT and not await self.probe():
                self._log("modem already off")
                return "already_off"
        return await off(self, t, cpof_ok)


# ModemPower's steps as functions of this module (each stays a small block of bytecode; their names
# and arguments are names the firmware interns already, and none is a method)
async def wake(self, t):
    """ensure_on's probes and key presses (t: the timings): (on, presses, ms)."""
    c = self.clock
    t0 = c.ticks_ms()
    self.pin.value(0)  # key released (its idle level) before anything else
    on = False
    for _ in range(t["already_on_probes"]):
        on = await self.probe()
        if on:
            break
        __import__("at.recover")
        __import__("at.fail")
    n = 0  # presses
    while not on and n < t["tries"]:
        n += 1
        await self.pulse(t["pulse_ms"])
        on = await self._until(True, t["boot_wait_ms"], t["rdy_slice_ms"])
    return on, n, c.diff(c.ticks_ms(), t0)


async def off(self, t, ok):
    """power_off after AT+CPOF (ok: it answered OK): the wait for silence, the long press when that
    is safe."""
    silent = t["off_silence_window_ms"], t["off_probe_interval_ms"]
    if await self._until(False, *silent):
        self._log("modem off (AT+CPOF)")
        return "cpof"
    if ok:
        raise ModemPowerError(
            "modem answered OK to AT+CPOF but still answers AT after %d ms; the power key was not pressed "
            "(a press during its shutdown can switch it back on)%s" % (t["off_silence_window_ms"], self._pin_name())
        )
    await self.pulse(t["off_pulse_ms"])
    if await self._until(False, *silent):
        self._log("modem off (power-key press)")
        return "pulse"
    raise ModemPowerError(
        "modem still answers AT after AT+CPOF (failed) and a %d ms power-key press%s"
        % (t["off_pulse_ms"], self._pin_name())
    )
