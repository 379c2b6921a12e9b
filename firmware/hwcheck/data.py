# hwcheck area: past registration, the data connection as the telelogger makes it (cellular transport):
#   data     the APN (set before registration by the cellular area: AT+CGDCONT, AT+CGAUTH) and the
#            PDP context, which the modem's MQTT service start (AT+CMQTTSTART) activates
# The MQTT service is left started for the broker area (which stops it).
from hwcheck.common import FAIL, PASS, SKIP, err_text


class DataCheck:
    def __init__(self, c):
        self.c = c

    async def run(self):
        c = self.c
        if c.cfg.get("transport") == "wifi":
            for name in ("data", "DNS", "TLS", "broker", "publish"):
                c.add(SKIP, name, "not checked: transport is wifi (this check covers the cellular path)")
            c.wifi = True
            return
        if c.modem_ok:
            c.open_modem("data", sim=False)
        await self.data()

    def skip(self, name, why_not, fix=None):
        self.c.add(SKIP, name, "not checked (%s)" % why_not, fix)

    # ---- data: APN, PDP context, MQTT service ------------------------------------------------------
    async def data(self):
        c = self.c
        name = c.step = "data"
        if c.at is None:
            return c.skip_modem(name)
        if not c.registered:
            return self.skip(name, "not registered", "fix the registration first")
        if c.apn_error:
            c.add(FAIL, name, c.apn_error, "check cellular.apn (and secrets apn_user / apn_pass) against the operator's settings")
            return
        cm = c.need("modem.cmqtt", name, "modem/")
        if cm is None:
            return
        t = min(5000, c.timeout_ms)
        used = await self.context_apn(t)
        try:
            await cm.Cmqtt(c.at, c.clock, cmd_timeout_ms=t).start()
        except Exception as e:
            if isinstance(e, MemoryError):
                raise  # not the broker's doing: the runner says what crashed
            c.add(FAIL, name, "no data connection: the modem's MQTT service did not start (AT+CMQTTSTART: %s), APN %s"
                  % (err_text(e), repr(used) if used else "automatic"),
                  "set cellular.apn to the operator's APN for this SIM and check the SIM has a data plan (try it in a phone)")
            return
        c.mqtt_started = True
        ip = await self.ip_address(t)
        c.add(PASS, name, "PDP context up (APN %s%s), MQTT service started"
              % (repr(used) if used else "automatic", ", IP " + ip if ip else ""))

    async def context_apn(self, t):
        """The APN of PDP context 1 (AT+CGDCONT?), or None."""
        try:
            r = await self.c.at.cmd("AT+CGDCONT?", timeout_ms=t)
        except Exception:
            return None
        for ln in r.lines:
            if ln.startswith("+CGDCONT: 1,"):
                f = ln[12:].split(",")
                if len(f) > 1:
                    return f[1].strip().strip('"') or None
        return None

    async def ip_address(self, t):
        try:
            r = await self.c.at.cmd("AT+IPADDR", timeout_ms=t)
        except Exception:
            return None  # not every firmware reports it for the MQTT service's context
        v = r.value("+IPADDR:")
        return v.strip() if v else None
