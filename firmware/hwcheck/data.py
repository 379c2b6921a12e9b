# hwcheck area: past registration, the data connection as the telelogger makes it (cellular transport):
#   data     the APN (set before registration by the cellular area: AT+CGDCONT, AT+CGAUTH) and the
#            PDP context, which the modem's MQTT service start (AT+CMQTTSTART) activates
#   DNS      AT+CDNSGIP="<broker.host>" (a module that does not answer it: "DNS not checked")
# The MQTT service is left started for the broker area (which stops it).
from hwcheck import FAIL, INFO, PASS, SKIP, bad_text, err_text, why


def _is_ip(host):
    parts = host.split(".")
    if len(parts) != 4:
        return False
    for p in parts:
        if not p or len(p) > 3 or not p.isdigit() or int(p) > 255:
            return False
    return True


class DataCheck:
    def __init__(self, c):
        self.c = c
        b = c.cfg.get("broker") if isinstance(c.cfg.get("broker"), dict) else {}
        self.host = b.get("host") or ""

    async def run(self):
        c = self.c
        if c.cfg.get("transport") == "wifi":
            for name in ("data", "DNS", "TLS", "broker", "publish"):
                c.add(SKIP, name, "not checked: transport is wifi (this check covers the cellular path)")
            c.wifi = True
            return
        if c.modem_ok:
            c.open_modem("data", sim=False)
        ok = await self.data()
        c.dns_ok = await self.dns(ok)

    def skip(self, name, why_not, fix=None):
        self.c.add(SKIP, name, "not checked (%s)" % why_not, fix)
        return False

    # ---- data: APN, PDP context, MQTT service ------------------------------------------------------
    async def data(self):
        c = self.c
        name = c.step = "data"
        if c.at is None:
            c.skip_modem(name)
            return False
        if not c.registered:
            return self.skip(name, "not registered", "fix the registration first")
        if c.apn_error:
            c.add(FAIL, name, c.apn_error, "check cellular.apn (and secrets apn_user / apn_pass) against the operator's settings")
            return False
        cm = c.need("modem.cmqtt", name, "modem/")
        if cm is None:
            return False
        t = min(5000, c.timeout_ms)
        used = await self.context_apn(t)
        try:
            await cm.Cmqtt(c.at, c.clock, cmd_timeout_ms=t).start()
        except Exception as e:
            c.add(FAIL, name, "no data connection: the modem's MQTT service did not start (AT+CMQTTSTART: %s), APN %s"
                  % (err_text(e), repr(used) if used else "automatic"),
                  "set cellular.apn to the operator's APN for this SIM and check the SIM has a data plan (try it in a phone)")
            return False
        c.mqtt_started = True
        ip = await self.ip_address(t)
        c.add(PASS, name, "PDP context up (APN %s%s), MQTT service started"
              % (repr(used) if used else "automatic", ", IP " + ip if ip else ""))
        return True

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

    # ---- DNS ---------------------------------------------------------------------------------------
    async def dns(self, ok):
        c = self.c
        name = c.step = "DNS"
        host = self.host
        if not ok:
            return self.skip(name, "no data connection", "fix the data item first")
        if not host:
            c.add(SKIP, name, "not checked: no broker.host in the config",
                  "set broker.host in config.json (on a host: --config FILE)")
            return False
        if bad_text(host):
            c.add(FAIL, name, "broker.host %r contains a quote or control character" % host, "correct broker.host")
            return False
        if _is_ip(host):
            c.add(INFO, name, "broker.host %s is an IP address: no lookup needed" % host)
            return True
        lines = None
        try:
            r = await c.at.cmd('AT+CDNSGIP="%s"' % host, timeout_ms=max(10000, c.timeout_ms))
            lines = r.lines
        except Exception as e:
            lines = getattr(e, "lines", None) or []
            if not [ln for ln in lines if ln.startswith("+CDNSGIP:")]:
                if type(e).__name__ == "ATTimeout":
                    c.add(FAIL, name, "no answer to AT+CDNSGIP for %s within %d s" % (host, max(10000, c.timeout_ms) // 1000),
                          "check the signal and cellular.apn (the network's DNS did not answer); retry")
                    return False
                # a module (or simulator) without AT+CDNSGIP: the CONNECT below still resolves the name
                c.add(SKIP, name, "DNS not checked: the module gave no +CDNSGIP result (%s)" % why(e),
                      "none needed: the broker item shows whether %s resolves (error 25 if not)" % host)
                return True
        for ln in lines:
            if ln.startswith("+CDNSGIP:"):
                f = [x.strip().strip('"') for x in ln[9:].split(",")]
                if f[0] == "1" and len(f) >= 3:
                    c.add(PASS, name, "%s -> %s" % (host, ", ".join(f[2:])))
                    return True
                c.add(FAIL, name, "%s does not resolve (AT+CDNSGIP error %s)" % (host, f[1] if len(f) > 1 else "?"),
                      "check broker.host is spelt right and exists; cellular.apn must give Internet access")
                return False
        c.add(SKIP, name, "DNS not checked: AT+CDNSGIP gave no +CDNSGIP line",
              "none needed: the broker item shows whether %s resolves (error 25 if not)" % host)
        return True
