# hwcheck area: past registration to the broker, as the telelogger goes there (cellular transport):
#   data     the APN (set before registration by the cellular area: AT+CGDCONT, AT+CGAUTH) and the
#            PDP context, which the modem's MQTT service start (AT+CMQTTSTART) activates
#   DNS      AT+CDNSGIP="<broker.host>" (a module that does not answer it: "DNS not checked")
#   broker   TLS set-up as configured (certificates uploaded by content-hash name, AT+CSSLCFG), then
#            AT+CMQTTACCQ / AT+CMQTTCONNECT with device_id and secrets mqtt_user / mqtt_pass
#   publish  one QoS 1 message on <topic_prefix>/<device_id>/status, acknowledged by the broker
# Each item depends on the one before it (SKIP when that one failed). At the end the session is
# closed (DISC, REL, STOP).
from hwcheck import FAIL, INFO, PASS, SKIP, WARN, cfg_get, why

# The fix for a CMQTT error of the CONNECT, by code: what in the config or at the broker to check.
# One line per group: "<codes>=<fix>"; {port}/{host}/{id} are filled in. (Meanings come with the
# error from the driver; these name the setting to change.)
_CONNECT_FIXES = (
    "3 4 26=check broker.host and broker.port ({port}): the broker must listen there and accept connections "
    "from the mobile network (firewall, cloud security group)\n"
    "25=check broker.host ({host}) is spelt right and resolvable from the mobile network\n"
    "7 9 23=the data connection dropped: check cellular.apn and the SIM's data plan, then retry\n"
    "17=no CONNACK in time: check broker.port ({port}) is the broker's MQTT port and broker.tls matches it "
    "(8883 is usually TLS, 1883 plain)\n"
    "27=the broker does not speak MQTT 3.1.1: use a broker (or listener) that does\n"
    "28=the broker refused the client id {id} (device_id): check its policy allows that id\n"
    "29=the broker is up but refuses service: retry later, check the broker's log\n"
    "30=check secrets mqtt_user and mqtt_pass against the broker's accounts\n"
    "31=the broker does not authorise this client: check its ACL/policy for the user or device certificate\n"
    "32=TLS handshake failed: certs.ca must be the CA that signed the broker's certificate; for mutual TLS "
    "certs.cert and certs.key the device's pair the broker trusts; broker.port a TLS listener\n"
    "33=set certs.ca (and certs.cert, certs.key for mutual TLS) in secrets.json and copy the files to the board\n"
    "34=the certificate files do not load: check certs.* are complete PEM files and the key matches the certificate\n"
)


def connect_fix(code, host, port, client_id):
    key = str(code)
    for line in _CONNECT_FIXES.split("\n"):
        i = line.find("=")
        if i > 0 and key in line[:i].split():
            return line[i + 1 :].replace("{port}", str(port)).replace("{host}", host).replace("{id}", repr(client_id))
    return None


def _code(e):
    code = getattr(e, "code", None)
    return code if isinstance(code, int) else None


def _err(e):
    """'error 30 (connection refused: bad user name or password)' or the exception's text."""
    code = _code(e)
    meaning = getattr(e, "meaning", None)
    if code is not None and meaning:
        return "error %d (%s)" % (code, meaning)
    return why(e)


def _is_ip(host):
    parts = host.split(".")
    if len(parts) != 4:
        return False
    for p in parts:
        if not p or len(p) > 3 or not p.isdigit() or int(p) > 255:
            return False
    return True


def _bad_text(s):
    for ch in s:
        if ch == '"' or ord(ch) < 32 or ord(ch) == 127:
            return True
    return False


class BrokerCheck:
    def __init__(self, c):
        self.c = c
        self.mq = None  # modem.cmqtt.Cmqtt once the service started
        self.connected = False
        b = c.cfg.get("broker") if isinstance(c.cfg.get("broker"), dict) else {}
        self.host = b.get("host") or ""
        self.tls = bool(b.get("tls"))
        self.port = b.get("port") or (8883 if self.tls else 1883)

    async def run(self):
        c = self.c
        try:
            if c.cfg.get("transport") == "wifi":
                for name in ("data", "DNS", "broker", "publish"):
                    c.add(SKIP, name, "not checked: transport is wifi (this check covers the cellular path)")
                return
            if c.modem_ok:
                c.open_modem("data", sim=False)
            ok = await self.data()
            ok = await self.dns(ok)
            ok = await self.broker(ok)
            await self.publish(ok)
        finally:
            await self.close()

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
        self.mq = cm.Cmqtt(c.at, c.clock, cmd_timeout_ms=t)
        try:
            await self.mq.start()
        except Exception as e:
            c.add(FAIL, name, "no data connection: the modem's MQTT service did not start (AT+CMQTTSTART: %s), APN %s"
                  % (_err(e), repr(used) if used else "automatic"),
                  "set cellular.apn to the operator's APN for this SIM and check the SIM has a data plan (try it in a phone)")
            return False
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
        if _bad_text(host):
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
                c.add(SKIP, name, "DNS not checked: the module answers %s to AT+CDNSGIP" % why(e),
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

    # ---- broker: TLS and CONNECT -------------------------------------------------------------------
    def client_id(self):
        c = self.c
        dev = c.cfg.get("device_id")
        if not dev or dev == "auto":
            try:
                dev = c.board.device_id()
            except Exception:
                dev = "hwcheck"
        return dev

    async def broker(self, ok):
        c = self.c
        name = c.step = "broker"
        if not ok:
            return self.skip(name, "DNS or data failed" if self.host else "no broker.host", "fix the items above first")
        cid = self.client_id()
        user = cfg_get(c.cfg, "secrets", "mqtt_user") or None
        password = cfg_get(c.cfg, "secrets", "mqtt_pass") or None
        for key, v in (("device_id", cid), ("secrets.mqtt_user", user), ("secrets.mqtt_pass", password)):
            if v and _bad_text(v):
                c.add(FAIL, name, "%s contains a quote or control character" % key, "choose a %s without \" or control characters" % key)
                return False
        ctx = cfg_get(c.cfg, "cellular", "ssl_ctx", 0)
        authmode = None
        if self.tls:
            authmode = await self.tls_setup(name, ctx)
            if authmode is None:
                return False
        b = c.cfg.get("broker") or {}
        keepalive = b.get("keepalive") or 60
        clean = b.get("clean_session", True) is not False
        url = "%s:%d" % (self.host, self.port)
        t0 = c.clock.ticks_ms()
        try:
            await self.mq.acquire(cid, tls=self.tls)
            await self.mq.connect(self.host, self.port, keepalive, clean, user, password,
                                  ssl_ctx=ctx if self.tls else None, timeout_ms=min(120000, max(30000, 6 * c.timeout_ms)))
        except Exception as e:
            code = _code(e)
            fix = connect_fix(code, self.host, self.port, cid) if code is not None else None
            c.add(FAIL, name, "CONNECT to %s as %r%s failed: %s" % (url, cid, " (TLS)" if self.tls else "", _err(e)),
                  fix or getattr(e, "hint", None) or "check broker.host, broker.port, broker.tls and the credentials")
            return False
        self.connected = True
        ms = c.clock.diff(c.clock.ticks_ms(), t0)
        who = ", user %r" % user if user else ""
        if not self.tls:
            c.add(PASS, name, "connected to %s as %r%s, no TLS, in %d ms" % (url, cid, who, ms))
        elif authmode == 0:
            c.add(WARN, name, "connected to %s as %r%s over TLS, but the server is NOT verified (no certs.ca), in %d ms"
                  % (url, cid, who, ms), "set certs.ca to the CA of the broker's certificate (secrets.json)")
        else:
            c.add(PASS, name, "connected to %s as %r%s over TLS (%s), in %d ms"
                  % (url, cid, who, "server verified" if authmode == 1 else "mutual TLS", ms))
        return True

    async def tls_setup(self, name, ctx):
        """Certificates from secrets certs.* uploaded (skipped when the module has them) and the
        SSL context configured; the authmode, or None after a FAIL line."""
        c = self.c
        tm = c.need("modem.tls", name, "modem/")
        if tm is None:
            return None
        certs = {}
        for role in ("ca", "cert", "key"):
            path = cfg_get(c.cfg, "secrets", "certs", {}).get(role)
            if not path:
                continue
            try:
                with open(path, "rb") as f:
                    certs[role] = f.read()
            except OSError as e:
                c.add(FAIL, name, "certs.%s: cannot read %s (%s)" % (role, path, why(e)),
                      "copy the file to the board (make deploy copies the certificates secrets.json names)")
                return None
        tls = tm.Tls(c.at, None, cmd_timeout_ms=min(5000, c.timeout_ms))  # firmware: see the modem model item
        try:
            names = await tls.provision(ca=certs.get("ca"), cert=certs.get("cert"), key=certs.get("key"))
            return await tls.configure(ctx, ca=names.get("ca"), cert=names.get("cert"), key=names.get("key"))
        except Exception as e:
            c.add(FAIL, name, "TLS set-up failed: %s" % why(e),
                  "check certs.ca/cert/key are complete PEM files (and the modem firmware supports SSL: modem model)")
            return None

    # ---- publish -----------------------------------------------------------------------------------
    async def publish(self, ok):
        c = self.c
        name = c.step = "publish"
        if not ok:
            return self.skip(name, "not connected to the broker", "fix the broker item first")
        prefix = c.cfg.get("topic_prefix") or "freematics"
        topic = "%s/%s/status" % (prefix, self.client_id())
        t0 = c.clock.ticks_ms()
        try:
            await self.mq.publish(topic, '{"hwcheck":"publish test"}', 1, timeout_s=60)
        except Exception as e:
            c.add(FAIL, name, "QoS 1 publish on %s failed: %s" % (topic, _err(e)),
                  "check the broker's ACL/policy lets this client publish on %s" % topic)
            return False
        c.add(PASS, name, "QoS 1 message on %s acknowledged by the broker in %d ms" % (topic, c.clock.diff(c.clock.ticks_ms(), t0)))
        return True

    async def close(self):
        """Leave the modem as the telelogger expects it at boot: no session, service stopped."""
        mq = self.mq
        self.mq = None
        if mq is None or self.c.at is None:
            return
        for fn in (mq.disconnect, mq.release, mq.stop) if self.connected else (mq.release, mq.stop):
            try:
                await fn()
            except Exception:
                pass  # best effort: the telelogger cleans a stale service up at boot anyway
