# hwcheck area: the broker, as the telelogger connects to it (cellular transport):
#   broker   TLS set-up as configured (certificates uploaded by content-hash name, AT+CSSLCFG), then
#            AT+CMQTTACCQ / AT+CMQTTCONNECT with device_id and secrets mqtt_user / mqtt_pass
#   publish  one QoS 1 message on <topic_prefix>/<device_id>/status, acknowledged by the broker
# Each depends on the one before it (SKIP when that one failed). At the end the session is closed
# and the service the data area started is stopped (DISC, REL, STOP).
from hwcheck import FAIL, PASS, SKIP, WARN, bad_text, cfg_get, err_text, why

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


class BrokerCheck:
    def __init__(self, c):
        self.c = c
        self.mq = None  # modem.cmqtt.Cmqtt on the modem's started MQTT service
        self.connected = False
        b = c.cfg.get("broker") if isinstance(c.cfg.get("broker"), dict) else {}
        self.host = b.get("host") or ""
        self.tls = bool(b.get("tls"))
        self.port = b.get("port") or (8883 if self.tls else 1883)

    async def run(self):
        c = self.c
        if c.wifi:
            return  # the data area said "not checked" for these items too
        if c.mqtt_started and c.modem_ok and c.open_modem("broker", sim=False) is not None:
            cm = c.need("modem.cmqtt", "broker", "modem/")
            if cm is not None:
                self.mq = cm.Cmqtt(c.at, c.clock, cmd_timeout_ms=min(5000, c.timeout_ms))
                self.mq.started = True  # by the data area
        try:
            ok = await self.broker()
            await self.publish(ok)
        finally:
            await self.close()

    def skip(self, name, why_not, fix=None):
        self.c.add(SKIP, name, "not checked (%s)" % why_not, fix)
        return False

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

    async def broker(self):
        c = self.c
        name = c.step = "broker"
        if self.mq is None or not c.dns_ok:
            return self.skip(name, "DNS or data failed" if self.host else "no broker.host", "fix the items above first")
        cid = self.client_id()
        user = cfg_get(c.cfg, "secrets", "mqtt_user") or None
        password = cfg_get(c.cfg, "secrets", "mqtt_pass") or None
        for key, v in (("device_id", cid), ("secrets.mqtt_user", user), ("secrets.mqtt_pass", password)):
            if v and bad_text(v):
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
            code = getattr(e, "code", None)
            fix = connect_fix(code, self.host, self.port, cid) if isinstance(code, int) else None
            c.add(FAIL, name, "CONNECT to %s as %r%s failed: %s" % (url, cid, " (TLS)" if self.tls else "", err_text(e)),
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
            c.add(FAIL, name, "QoS 1 publish on %s failed: %s" % (topic, err_text(e)),
                  "check the broker's ACL/policy lets this client publish on %s" % topic)
            return False
        c.add(PASS, name, "QoS 1 message on %s acknowledged by the broker in %d ms" % (topic, c.clock.diff(c.clock.ticks_ms(), t0)))
        return True

    async def close(self):
        """Leave the modem as the telelogger expects it at boot: no session, service stopped."""
        mq = self.mq
        self.mq = None
        self.c.mqtt_started = False
        if mq is None or self.c.at is None:
            return
        for fn in (mq.disconnect, mq.release, mq.stop) if self.connected else (mq.release, mq.stop):
            try:
                await fn()
            except Exception:
                pass  # best effort: the telelogger cleans a stale service up at boot anyway
