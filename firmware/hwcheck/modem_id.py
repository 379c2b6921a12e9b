# hwcheck area: the modem answers (powered on with the power key when it is silent) and its model
# and firmware (MQTT over SSL possible). Leaves c.modem_ok and c.modem_id for the areas after it.
from hwcheck.common import FAIL, PASS, why


class ModemCheck:
    def __init__(self, c):
        self.c = c

    async def run(self):
        await self.modem()
        await self.identity()

    async def modem(self):
        c = self.c
        name = c.step = "modem"
        if c.absent("modem", name):
            return
        try:
            c.board.modem_stream()
        except Exception as e:
            c.add(FAIL, name, "cannot open the modem's port: %s" % why(e),
                  "check the board file's modem section (UART, rx/tx pins) or the --modem PATH")
            return
        modem = c.open_modem(name)
        if modem is None:
            return
        at = c.at
        t = c.timeout_ms
        pin = None
        if c.power_on:
            try:
                pin = c.board.modem_power_pin()
            except Exception:
                pin = None  # no power key wired: the modem must be on already
        if pin is not None:
            detail = await self.power(pin, at)
            if detail is None:
                return
        else:
            try:
                await modem.wait_ready(t)
            except Exception as e:
                c.add(FAIL, name, "no answer to AT within %d s (%s)" % (t // 1000, why(e)),
                      "power the modem on (power-key pulse; on the ONE+ GPIO27, see boards/*.json modem_power) "
                      "and check this is its AT port")
                return
            detail = "answers AT (powered)"
        c.modem_ok = True
        c.add(PASS, name, detail)
        for cmd in ("ATE0", "AT+CMEE=2"):
            try:
                await at.cmd(cmd, timeout_ms=min(5000, t))
            except Exception:
                pass  # echo and numeric errors are handled by the engine either way

    async def power(self, pin, at):
        """Power the modem on with the power key when it does not answer; the PASS detail, or None
        after adding the FAIL line."""
        c = self.c
        pw = c.need("modem.power", "modem", "modem/")
        if pw is None:
            return None
        kw = {}
        if c.power_timing:
            kw["timing"] = c.power_timing
        try:
            info = await pw.ModemPower(pin, at, c.clock, **kw).power_on()
        except Exception as e:
            c.add(FAIL, "modem", "no answer to AT: %s" % why(e),
                  "check the modem is seated and supplied (the ONE+ modem needs the OBD port's 12 V, not only USB) "
                  "and modem_power (pin, active) in the board file")
            return None
        if info.get("already_on"):
            return "answers AT (was already on)"
        return "answers AT (powered on with %d power-key pulse(s) in %d ms)" % (info["pulses"], info["ms"])

    async def identity(self):
        c = self.c
        name = c.step = "modem model"
        if not c.modem_ok:
            return c.skip_modem(name)
        try:
            model, rev = await c.modem.identify()
        except Exception as e:
            c.add(FAIL, name, "ATI failed (%s)" % why(e), "check the modem firmware answers ATI / AT+CGMR")
            return
        c.modem_id = (model, rev)
        detail = "%s, firmware %s" % (model or "?", rev or "?")
        if not c.modem.ssl_supported():
            from modem import codes

            c.add(FAIL, name, detail + ": no MQTT over SSL", codes.FIRMWARE_NO_SSL_FIX)
        else:
            c.add(PASS, name, detail + " (MQTT over SSL possible)")
