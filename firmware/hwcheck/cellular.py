# hwcheck area: the SIM (PIN from the config), the signal and the network registration, with the
# APN (cellular.apn) set before it as the telelogger's bring-up does (reported by the data item).
from hwcheck.common import FAIL, PASS, SKIP, WARN, cfg_get, why

WEAK_DBM = -105  # at or below: WARN (CSQ <= 4)


class CellularCheck:
    def __init__(self, c):
        self.c = c

    async def run(self):
        if self.c.modem_ok:
            self.c.open_modem("SIM")
        await self.sim()
        await self.signal()
        await self.registration()

    async def sim(self):
        c = self.c
        name = c.step = "SIM"
        if c.modem is None:
            return c.skip_modem(name)
        try:
            await c.modem.sim_ready()
        except Exception as e:
            c.sim_ok = False
            c.add(FAIL, name, why(e), self.sim_fix(e))
            return
        c.sim_ok = True
        c.add(PASS, name, "ready")

    def sim_fix(self, e):
        text = why(e).lower()
        if "asks for a pin" in text:
            return "set cellular.sim_pin in config.json and redeploy (or remove the PIN in a phone)"
        if "pin refused" in text or "still asks" in text:
            return "correct cellular.sim_pin (each wrong PIN counts: after 3 the SIM needs its PUK)"
        if "puk" in text or "locked" in text:
            return "unlock the SIM with its PUK in a phone, then retry"
        if "not inserted" in text or "failure" in text:
            return "insert the SIM (nano, contacts down) with the device unpowered, then retry"
        return "insert/activate the SIM; set cellular.sim_pin if it asks for a PIN"

    async def signal(self):
        c = self.c
        name = c.step = "signal"
        if c.modem is None:
            return c.skip_modem(name)
        try:
            dbm = await c.modem.signal_dbm()
        except Exception as e:
            c.add(FAIL, name, "AT+CSQ failed (%s)" % why(e), "check the modem")
            return
        if dbm is None:
            if c.sim_ok is False:
                c.add(SKIP, name, "unknown (AT+CSQ 99) with the SIM not ready", "fix the SIM first")
            else:
                c.add(FAIL, name, "no signal (AT+CSQ 99)", "connect the LTE antenna (MAIN); check coverage for the SIM's network")
        elif dbm <= WEAK_DBM:
            c.add(WARN, name, "%d dBm (weak)" % dbm, "move the antenna / vehicle for better coverage")
        else:
            c.add(PASS, name, "%d dBm" % dbm)

    async def apn(self):
        """AT+CGDCONT (+ AT+CGAUTH) from cellular.apn (secrets apn_user/apn_pass); a refusal is
        kept for the data item."""
        c = self.c
        apn = cfg_get(c.cfg, "cellular", "apn") or ""
        if not apn:
            return
        for ch in apn:
            if ch == '"' or ord(ch) < 32:
                c.apn_error = "cellular.apn %r contains a quote or control character" % apn
                return
        try:
            await c.modem.set_apn(apn)
        except Exception as e:
            c.apn_error = "the modem refused APN %r: %s" % (apn, why(e))

    async def registration(self):
        c = self.c
        name = c.step = "registration"
        if c.modem is None:
            return c.skip_modem(name)
        if c.sim_ok is False:
            c.add(SKIP, name, "not checked (SIM not ready)", "fix the SIM first")
            return
        await self.apn()
        try:
            await c.modem.wait_registered(c.reg_timeout_ms)
        except Exception as e:
            c.registered = False
            if "denied" in why(e):
                fix = ("the network refused this SIM: check it is activated, has a data plan, and may roam on "
                       "this network (try it in a phone)")
            else:
                fix = "check the LTE antenna and coverage, the SIM's operator, and cellular.apn; then retry"
            c.add(FAIL, name, why(e), fix)
            return
        c.registered = True
        reg = c.modem.info.get("reg")
        c.add(PASS, name, "registered (CREG/CGREG/CEREG %s)" % (",".join(str(s) for s in reg) if reg else "?"))
