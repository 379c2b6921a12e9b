# What the loop needs from the modem on the cellular transport: signal, network time and power
# (the power key / AT+CPOF for standby). Built by telelogger.assembly; resident while the loop runs.


class ModemCtl:
    """What the loop needs from the modem: signal, network time, power (PWRKEY / AT+CPOF)."""

    def __init__(self, pub, board, clock, log=None):
        self.pub = pub
        self.board = board
        self.clock = clock
        self.log = log
        self._power = None

    async def signal_dbm(self):
        return await self.pub.modem.signal_dbm()

    async def utc_ms(self):
        """The network's time (AT+CCLK tuple: y, mo, d, h, mi, s, tz quarter hours, local time) -> UTC
        ms, or None while the module has none."""
        t = await self.pub.modem.network_time()
        if not t:
            return None
        from gnss.fix import days_from_epoch

        y, mo, d, h, mi, s, tzq = t[:7]
        return ((days_from_epoch(y, mo, d) * 86400 + h * 3600 + mi * 60 + s) - tzq * 900) * 1000

    def __getattr__(self, name):
        """power_off(), power_on() and wake() (the publisher's hook for a module that stopped answering,
        a power loss switching it off: press the key until it answers -> True, or False, the
        publisher's recovery goes on: ModemPower.ensure_on), coroutine functions of the modem's power
        key, a modem.power.ModemPower made at the first call. One lookup instead of three wrappers."""
        if name not in "power_off power_on wake".split():  # (one str: a tuple holds a str object per name)
            raise AttributeError(name)

        async def op():
            if self._power is None:
                from modem.power import ModemPower

                self._power = ModemPower(self.board.modem_power_pin(), self.pub.at, self.clock, log=self.log)
            return await getattr(self._power, "ensure_on" if name == "wake" else name)()

        return op
