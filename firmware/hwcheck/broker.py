# hwcheck area: the broker, as the telelogger connects to it (cellular transport):
#   broker   AT+CMQTTACCQ / AT+CMQTTCONNECT with device_id and secrets mqtt_user / mqtt_pass, over the
#            SSL context the TLS area configured when broker.tls is on
#   publish  one QoS 1 message on <topic_prefix>/<device_id>/status, acknowledged by the broker
# Each depends on the one before it (SKIP when that one failed). At the end the session is closed
# and the service the data area started is stopped (DISC, REL, STOP).
from hwcheck.common import FAIL, PASS, SKIP, bad_text, cfg_get, err_text

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
        authmode = c.authmode
        if self.tls and authmode is None:
            return self.skip(name, "TLS not set up", "fix the TLS item first")
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
            if isinstance(e, MemoryError):
                raise  # not the broker's doing: the runner says what crashed
            code = getattr(e, "code", None)
            fix = None
            if isinstance(code, int):
                from hwcheck.fixes import connect_fix

                fix = connect_fix(code, self.host, self.port, cid)
            c.add(FAIL, name, "CONNECT to %s as %r%s failed: %s" % (url, cid, " (TLS)" if self.tls else "", err_text(e)),
                  fix or getattr(e, "hint", None) or "check broker.host, broker.port, broker.tls and the credentials")
            return False
        self.connected = True
        ms = c.clock.diff(c.clock.ticks_ms(), t0)
        who = ", user %r" % user if user else ""
        if not self.tls:
            c.add(PASS, name, "connected to %s as %r%s, no TLS, in %d ms" % (url, cid, who, ms))
        else:
            c.add(PASS, name, "connected to %s as %r%s over TLS (%s), in %d ms"
                  % (url, cid, who, ("server NOT verified: see TLS", "server verified", "mutual TLS")[authmode], ms))
        return True

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
            await self.mq.publish(topic, '{"hwcheck":"publish test"}', 1, timeout_s=60)  # pyright: ignore[reportOptionalMemberAccess] - connected above
        except Exception as e:
            if isinstance(e, MemoryError):
                raise  # not the broker's doing: the runner says what crashed
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
