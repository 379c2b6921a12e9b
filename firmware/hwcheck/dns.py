# hwcheck area: DNS of the broker, AT+CDNSGIP="<broker.host>" over the data connection the data area
# opened (a module that does not answer it: "DNS not checked", and the CONNECT still resolves it).
# Needs only the AT engine. Leaves c.dns_ok.
from hwcheck.common import FAIL, INFO, PASS, SKIP, bad_text, why


def _is_ip(host):
    parts = host.split(".")
    if len(parts) != 4:
        return False
    for p in parts:
        if not p or len(p) > 3 or not p.isdigit() or int(p) > 255:
            return False
    return True


class DnsCheck:
    def __init__(self, c):
        self.c = c
        b = c.cfg.get("broker") if isinstance(c.cfg.get("broker"), dict) else {}
        self.host = b.get("host") or ""

    async def run(self):
        c = self.c
        if c.wifi:
            return  # the data area said "not checked" for this item too
        if c.mqtt_started and c.open_modem("DNS", sim=False) is None:
            return
        c.dns_ok = await self.dns(c.mqtt_started)

    def skip(self, name, why_not, fix=None):
        self.c.add(SKIP, name, "not checked (%s)" % why_not, fix)
        return False

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
                from at.engine import TIMEOUT

                if getattr(e, "kind", None) == TIMEOUT:  # an ATError of no reply (a NetError's kind is a str)
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
