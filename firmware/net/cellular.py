# CellularPublisher: net.publisher.Publisher over the SIM7600's own MQTT stack (modem.cmqtt).
#
#   pub = CellularPublisher(at, clock, client_id="dev1", host="broker", port=8883, tls=True,
#                           certs={"ca": b"...", "cert": b"...", "key": b"..."}, modem_cfg={...})
#   await pub.connect()                  # bring-up (optional), TLS, START/ACCQ/CFG/WILL/SSLCFG/CONNECT
#   await pub.publish(topic, payload, 1) # returns after +CMQTTPUB: 0,0; reconnects and resends
#   await pub.subscribe(topic, 1)        # remembered and re-subscribed after every reconnect
#
# Recovery is layered; each failed attempt escalates one level, with exponential backoff + jitter
# between attempts (bounded by max_attempts):
#   L_CONNECT  SSLCFG + CONNECT                       (after +CMQTTCONNLOST / +CMQTTPING / error 11)
#   L_ACQUIRE  DISC/REL, ACCQ, CFG, WILL + L_CONNECT  (client wedged: 14 after retries, 19, 20)
#   L_SERVICE  DISC/REL/STOP, START + L_ACQUIRE       (+CMQTTNONET, 9, 23, timeouts)
#   L_MODEM    full bring-up + TLS + L_SERVICE        (RDY: the module rebooted)
# Configuration errors (bad credentials, not authorized, TLS handshake/certificates, firmware
# without SSL) are raised at once: retrying cannot fix them.
# A session refused by the broker or the TLS peer (CMQTT 15 "require connection fail", 27..31
# CONNACK refusals, 32..34 TLS) is not a modem fault: the module stays registered and the
# service started; the retry is at the MQTT level (REL/ACCQ + CONNECT, with backoff), and the
# warning says what was refused and what to check. Each completed stage lowers the level the next
# connect starts from, so a refusal right after a full bring-up does not cause another one.
from at.engine import ATError, ModemRebooted
from core.compat import DEFAULT_CLOCK
from core.errors import NetError, NotConnected, lookup
from modem import cmqtt as _c
from modem.sim7600 import ModemError, Sim7600
from modem.tls import Tls, TlsSetupError
from net.publisher import Publisher, backoff_ms, jitter_pick

L_CONNECT = 0
L_ACQUIRE = 1
L_SERVICE = 2
L_MODEM = 3



def _fatal(e):
    """Retrying cannot fix it: the configuration must change (credentials, certificates, ...)."""
    if isinstance(e, (TlsSetupError, _c.CmqttArgError)):
        return True
    return isinstance(e, _c.CmqttError) and (_c.is_refused(e.code) or _c.is_tls(e.code))


def _peer_refusal(e):
    return isinstance(e, _c.CmqttError) and e.op == "CMQTTCONNECT" and _c.is_peer_refusal(e.code)


class CellularPublisher(Publisher):
    def __init__(
        self,
        at,
        clock=None,
        client_id="freematics",
        host="localhost",
        port=1883,
        tls=False,
        keepalive=60,
        clean=True,
        user=None,
        password=None,
        ssl_ctx=0,
        certs=None,
        will=None,
        modem_cfg=None,
        bring_up=True,
        index=0,
        max_attempts=8,
        connect_budget_ms=600000,
        power_on=None,
        backoff_ms=1000,
        backoff_max_ms=60000,
        max_resends=5,
        pub_timeout_s=60,
        rng=None,
        log=None,
    ):
        Publisher.__init__(self)
        self.at = at
        self.clock = clock or DEFAULT_CLOCK
        self.client_id = client_id
        self.host = host
        self.port = port
        self.tls = tls
        self.keepalive = keepalive
        self.clean = clean
        self.user = user
        self.password = password
        self.ssl_ctx = ssl_ctx
        self.certs = certs or {}
        self.will = will  # (topic, message, qos)
        self.max_attempts = max_attempts
        # one connect() gives up after this long (full bring-ups included), so the telelogger's sender
        # beats its watchdog (900 s) in a garage without coverage instead of resetting in a loop
        self.connect_budget_ms = connect_budget_ms
        self.power_on = power_on  # async: press the power key (a module that lost its power answers nothing)
        self.backoff_ms = backoff_ms
        self.backoff_max_ms = backoff_max_ms
        self.max_resends = max_resends
        self.pub_timeout_s = pub_timeout_s
        self._rng = rng or jitter_pick
        self.log = log
        self.modem = Sim7600(at, self.clock, modem_cfg, log=log)
        self.tls_setup = Tls(at, self.modem, log=log)
        self.mq = _c.Cmqtt(at, self.clock, index=index, log=log)
        self.mq.on_message(self._deliver)
        self.mq.on_state(self._on_state)
        self._need = L_MODEM if bring_up else L_SERVICE
        self._ever = False
        self.cert_names = {}
        self.stats["resends"] = 0
        self.stats["refusals"] = 0  # CONNECTs refused by the broker / TLS peer
        self.stats["connect_ms"] = None  # last CMQTTSTART/CONNECT .. connected time
        at.on_urc("RDY", self._on_rdy)

    # ------------------------------------------------------------------ events
    def _on_rdy(self, line, body=None):
        self._need = L_MODEM
        self.mq._set_down("modem rebooted (RDY)")
        self.mq.started = self.mq.acquired = False

    def _on_state(self, up, why):
        if not up and self.log:
            self.log.warn("MQTT down: %s", why)

    def connected(self):
        return self.mq.connected()

    def _escalate(self, e):
        """The recovery level a failure calls for."""
        lvl = L_CONNECT
        if isinstance(e, ModemRebooted) or isinstance(e, ModemError):
            lvl = L_MODEM
        elif _peer_refusal(e):
            lvl = L_CONNECT
        elif self.mq.nonet or (isinstance(e, _c.CmqttError) and e.code in (9, 17, 23)):
            lvl = L_SERVICE
        elif isinstance(e, _c.CmqttError) and e.code in (14, 19, 20):
            lvl = L_ACQUIRE
        elif isinstance(e, ATError):
            lvl = L_SERVICE
        return lvl

    def backoff_ms_for(self, attempt):
        return backoff_ms(attempt, self.backoff_ms, self.backoff_max_ms, self._rng)

    # ------------------------------------------------------------------ connect
    async def _session(self, level):
        mq = self.mq
        if level >= L_MODEM:
            try:
                await self.modem.bring_up()
            except ModemError as e:
                if self.power_on is None or getattr(e, "kind", None) != "not_responding":
                    raise
                if self.log:
                    self.log.warn("modem does not answer (%s): pressing its power key", e)
                await self.power_on()  # after a power loss the module is off: AT alone never wakes it
                await self.modem.bring_up()
            if self.tls:
                await self._tls()
            self._reached(L_SERVICE)  # registered: a later failure need not register again
        elif self.tls and not self.cert_names and self.certs:
            await self._tls()
        t0 = self.clock.ticks_ms()
        if level >= L_SERVICE and mq.started:
            await mq.reset_service()
        elif level >= L_SERVICE or not mq.started:
            await mq.start()  # cleans up a stale service (23 / 19) left from before a reset
        self._reached(L_ACQUIRE)
        if level >= L_ACQUIRE or not mq.acquired:
            if mq.acquired:
                try:
                    await mq.release()
                except _c.CmqttError:
                    pass
            await mq.acquire(self.client_id, tls=self.tls)
            if self.will:
                await mq.set_will(*self.will)
        self._reached(L_CONNECT)
        await mq.connect(
            self.host,
            self.port,
            self.keepalive,
            self.clean,
            self.user,
            self.password,
            ssl_ctx=self.ssl_ctx if self.tls else None,
        )
        self.stats["connect_ms"] = self.clock.diff(self.clock.ticks_ms(), t0)

    def _reached(self, level):
        # a stage completed: the next connect needs to start no higher than `level` (an RDY or a
        # failure raises _need again)
        if self._need > level:
            self._need = level

    def _refused(self, e):
        msg = refusal_advice(e, self.host, self.port, self.tls)
        self.stats["last_error"] = msg
        self.stats["refusals"] += 1
        if self.log:
            self.log.warn("MQTT %s", msg)

    async def _tls(self):
        # certificates uploaded (if given) and the SSL context configured: net/cellular_setup.py
        await lookup("net.cellular_setup", "tls", self)

    async def _connect(self):
        """Bring the session up: escalating recovery with backoff (Publisher.connect is single-flight)."""
        attempt = 0
        level = self._need
        t0 = self.clock.ticks_ms()
        while True:
            try:
                await self._session(level)
                break
            except (NetError, ATError) as e:
                self._error(e)
                refused = _peer_refusal(e)
                if refused:
                    self._refused(e)
                if _fatal(e):
                    raise
                attempt += 1
                if self.log and not refused:
                    self.log.warn("connect attempt %d (level %d) failed: %s", attempt, level, e)
                spent = self.clock.diff(self.clock.ticks_ms(), t0)
                if attempt >= self.max_attempts or spent >= self.connect_budget_ms:
                    err = NotConnected("MQTT connect failed after %d attempts in %d s: %s" % (attempt, spent // 1000, e),
                                       getattr(e, "code", None), getattr(e, "meaning", None))
                    raise err
                if refused:
                    level = L_ACQUIRE  # REL/ACCQ + CONNECT: no STOP/START, no registration
                else:
                    level = max(level + 1, self._escalate(e))
                    if level > L_MODEM:
                        level = L_MODEM
                    if level > self._need:
                        self._need = level
                await self.clock.sleep_ms(self.backoff_ms_for(attempt))
        self._need = L_CONNECT
        if self._ever:
            self.stats["reconnects"] += 1
        self._ever = True
        self.stats["connects"] += 1
        await self._resubscribe()

    async def _resubscribe(self):
        subs = self._subs
        if not subs:
            return
        if len(subs) == 1:
            await self.mq.subscribe(subs[0][0], subs[0][1])
        else:
            for i in range(0, len(subs), 10):  # at most ten topics per SUBSCRIBE
                await self.mq.subscribe_many(subs[i : i + 10])

    def _mark_down(self, e):
        lvl = self._escalate(e)
        if lvl > self._need:
            self._need = lvl
        if self.mq.nonet and self._need < L_SERVICE:
            self._need = L_SERVICE

    # ------------------------------------------------------------------ publish / subscribe
    async def _ensure_up(self):
        if not self.mq.connected():
            if self.mq.nonet and self._need < L_SERVICE:
                self._need = L_SERVICE
            await self.connect()

    async def _with_retry(self, op, *args):
        tries = 0
        while True:
            await self._ensure_up()
            try:
                return await op(*args)
            except _c.CmqttArgError:
                raise
            except (NetError, ATError) as e:
                self._error(e)
                if _fatal(e) or not isinstance(e, (_c.CmqttError, ATError)):
                    raise
                tries += 1
                if isinstance(e, _c.CmqttError) and e.code in (2, 12, 18, 22):
                    raise  # the modem refused this one message (bad UTF-8, parameter, length)
                self._mark_down(e)
                if self.mq.connected():
                    # still "up" per the URCs but the command failed: force a fresh session
                    self.mq._set_down("command failed: %s" % e)
                if tries > self.max_resends:
                    raise
                self.stats["resends"] += 1

    async def publish(self, topic, payload, qos=1):
        # limits and UTF-8 before anything is sent (raises CmqttArgError, a ValueError)
        _c.check_topic(topic)
        _c.check_payload(payload, utf8=self.mq.check_utf8)
        await self._with_retry(self._pub_once, topic, payload, qos)
        self.stats["published"] += 1

    async def _pub_once(self, topic, payload, qos):
        await self.mq.publish(topic, payload, qos, timeout_s=self.pub_timeout_s)

    async def subscribe(self, topic, qos=1):
        """Remember the topic (re-subscribed after every reconnect) and subscribe now. A topic the
        session already has at this QoS is not sent again, so callers may subscribe on every connect."""
        _c.check_topic(topic)
        known = self._remember(topic, qos)
        if not self.mq.connected():
            await self._ensure_up()  # subscribes every remembered topic, this one included
            return
        if not known:
            await self._with_retry(self.mq.subscribe, topic, qos)

    async def unsubscribe(self, topic):
        self._subs = [s for s in self._subs if s[0] != topic]
        if self.mq.connected():
            await self.mq.unsubscribe(topic)

    async def disconnect(self):
        """DISC, REL, STOP (best effort: each error is expected when the session is gone)."""
        await lookup("net.cellular_setup", "disconnect", self)


# Built once at boot, or used when a refusal has to be explained: net/cellular_setup.py, imported
# for the call and dropped again (core.errors.lookup).
def read_certs(certs):
    """secrets.json certificate entries -> {role: bytes} (see net.cellular_setup.read_certs)."""
    return lookup("net.cellular_setup", "read_certs", certs)


def from_config(at, cfg, clock=None, log=None):
    """Build a CellularPublisher from the telelogger config dict (see ARCHITECTURE.md)."""
    return lookup("net.cellular_setup", "from_config", at, cfg, clock, log)


def refusal_advice(e, host, port, tls):
    """What was refused and what to check, for a CONNECT the broker or the TLS peer refused."""
    return lookup("net.cellular_setup", "refusal_advice", e, host, port, tls)
