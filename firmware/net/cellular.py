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
#   0 L_CONNECT  SSLCFG + CONNECT                       (after +CMQTTCONNLOST / +CMQTTPING / error 11)
#   1 L_ACQUIRE  DISC/REL, ACCQ, CFG, WILL + L_CONNECT  (client wedged: 14 after retries, 19, 20)
#   2 L_SERVICE  DISC/REL/STOP, START + L_ACQUIRE       (+CMQTTNONET, 9, 23, timeouts)
#   3 L_MODEM    full bring-up + TLS + L_SERVICE        (RDY: the module rebooted)
# Configuration errors (bad credentials, not authorized, TLS handshake/certificates, firmware
# without SSL) are raised at once: retrying cannot fix them.
# A session refused by the broker or the TLS peer (CMQTT 15 "require connection fail", 27..31
# CONNACK refusals, 32..34 TLS) is not a modem fault: the module stays registered and the
# service started; the retry is at the MQTT level (REL/ACCQ + CONNECT, with backoff), and the
# warning says what was refused and what to check. Each completed stage lowers the level the next
# connect starts from, so a refusal right after a full bring-up does not cause another one.
#
# RAM: resident are the publish path and the URC hooks. The connect (the session's stages from the
# level asked for) and subscribe/unsubscribe run in net/cellular_rare.py, what a failure leads to (the
# escalation, the backoff and its bounds, the advice for a refusal, a failed publish or subscribe) in
# net/cellular_fail.py, each imported for the call and dropped again (core.errors.lookup); the
# boot-time build (from_config, read_certs: the module __getattr__), the TLS set-up (with its
# driver, modem.tls, made for the call) and the disconnect in net/cellular_setup.py, the same way.
from at.engine import ATError
from core.compat import const
from core.errors import NetError, lookup
from modem.cmqtt import Cmqtt, CmqttArgError, check_payload, check_topic
from modem.sim7600 import Sim7600
from net.publisher import Publisher

# recovery levels (see the header; net/cellular_rare.py climbs them and net/cellular_setup.py uses
# one): const() names cost no interned name, so each module that uses a level has its own copy of
# these values (host_tests/mp/mp_cellular.py checks they agree)
_L_SERVICE = const(2)
_L_MODEM = const(3)

# the rare halves, net.cellular_rare and net.cellular_fail, are imported per call: named __name__ + "_rare" /
# "_fail" (a long literal would be a str constant of this module; "_rare" is a name already, at.engine's)


class CellularPublisher(Publisher):
    """Publisher over the SIM7600's CMQTT. CellularPublisher(at, clock=None, client_id="freematics",
    host="localhost", port=1883, tls=False, keepalive=60, clean=True, user=None, password=None,
    ssl_ctx=0, certs=None, will=None, modem_cfg=None, bring_up=True, index=0, max_attempts=8,
    connect_budget_ms=600000, power_on=None, backoff_ms=1000, backoff_max_ms=60000, max_resends=5,
    pub_timeout_s=60, rng=None, log=None): the keywords and what they mean are net/cellular_setup.py's
    init (boot-only code is not resident)."""

    # set by net/cellular_setup.py's init, among the settings above (annotations only: nothing on the device;
    # `if 1 - 1` is folded away by mpy-cross while pyright reads the import)
    if 1 - 1:
        from typing import Any
    power_on: "Any"  # None or a coroutine function pressing the modem's power key (app.assemble sets it)
    modem: Sim7600  # (the TLS driver, modem.tls.Tls, is made per use: net/cellular_setup.py's tls)
    mq: Cmqtt
    _need: int  # the recovery level the next connect starts from
    pub_timeout_s: int
    log = None  # core.log.Log
    clock: object  # a core.compat.Clock, set by net.cellular_setup.init

    def __init__(self, at, clock=None, **kw):
        Publisher.__init__(self)
        lookup("net.cellular_setup", "init", self, at, clock, kw)  # the settings (boot only)
        # the drivers, with net.cellular_setup dropped again (Cmqtt's set-up imports modem.cmqtt_rare)
        log = kw.get("log")
        self.modem = Sim7600(at, self.clock, kw.get("modem_cfg"), log=log)  # (TLS: net/cellular_setup.py's, per use)
        self.mq = mq = Cmqtt(at, self.clock, index=kw.get("index", 0), log=log)
        mq.on_message(self._deliver)
        mq.on_state(self._on_state)

    # ------------------------------------------------------------------ events
    def _on_rdy(self, line, body=None):
        self._need = _L_MODEM
        mq = self.mq
        mq._set_down("modem rebooted (RDY)")
        mq.started = mq.acquired = False

    def _on_state(self, connected, why):  # Cmqtt.on_state's cb(connected, why)
        if not connected and self.log:
            self.log.warn("MQTT down: %s", why)

    def connected(self):
        return self.mq._connected

    async def bring_up(self):
        """The modem's bring-up and, with TLS, the certificates and the SSL context: registered, a later
        failure need not register again (the next connect starts from L_SERVICE at most). _connect's first
        step, and net/cellular_rare.py's modem stage."""
        await self.modem.bring_up()
        if self.tls:
            await lookup("net.cellular_setup", "tls", self)  # certificates and the SSL context
        self._need = min(self._need, _L_SERVICE)

    async def _connect(self):
        """Publisher.connect's: a connect that needs the modem brought up (the first, one after RDY) has
        that bring-up and the TLS set-up done here, the rest (and any failure of these: its recovery, as
        its first attempt) by net/cellular_rare.py's connect. So the bring-up's modules are not loaded on
        top of that module: the first connect is the boot's heap peak."""
        e = None
        if self.mq.nonet and self._need < _L_SERVICE:  # after +CMQTTNONET the service needs STOP/START: a bare
            self._need = _L_SERVICE  # CONNECT would fail (9, network not opened) and cost an attempt
        if self._need >= _L_MODEM:
            try:
                await self.bring_up()
            except MemoryError:
                raise  # the loop's handled fault
            except Exception as x:  # noqa: BLE001 - net/cellular_rare.py tells what it is and what follows
                e = x
                getattr(x, "name", 0)  # (as in _with_retry)
        await lookup(__name__ + "_rare", "connect", self, e)

    # ------------------------------------------------------------------ publish / subscribe
    async def _with_retry(self, op, *args):
        tries = 0
        while True:
            if not self.mq._connected:  # up first (as net/cellular_rare.py's subscribe)
                await self.connect()
            try:
                return await op(*args)
            except CmqttArgError:
                raise
            except (NetError, ATError) as e:
                tries += 1
                getattr(e, "name", 0)  # a CmqttError's words: read now, not on top of net/cellular_fail.py
                lookup(__name__ + "_fail", "failed", self, e, tries)  # raises e unless a fresh session may help

    async def publish(self, topic, payload, qos=1):
        # limits and UTF-8 before anything is sent (raises CmqttArgError, a ValueError)
        check_topic(topic)
        check_payload(payload, utf8=self.mq.check_utf8)
        await self._with_retry(self.mq.publish, topic, payload, qos, False, self.pub_timeout_s)
        self.stats["published"] += 1

    def __getattr__(self, name):
        # the rare operations: functions of net/cellular_rare.py (disconnect: net/cellular_setup.py's)
        # taking the publisher first, imported for the call and dropped again:
        #   subscribe(topic, qos)   remember the topic (re-subscribed after every reconnect) and subscribe
        #                           now; a topic the session already has at this QoS is not sent again,
        #                           so callers may subscribe on every connect
        #   unsubscribe(topic)
        #   disconnect()            DISC, REL, STOP (best effort: each error is expected when the
        #                           session is gone)
        if name in ("subscribe", "unsubscribe"):
            m = __name__ + "_rare"
        elif name == "disconnect":
            m = "net.cellular_setup"
        else:
            raise AttributeError(name)
        return lambda *a: lookup(m, name, self, *a)


if 1 - 1:  # (folded away by mpy-cross: pyright reads the import)
    from typing import Callable

# (declared, not assigned: the module's __getattr__ gives it. The identifier makes the literal below an
# interned name, the name net/cellular_setup.py's from_config has anyway, not a str constant)
from_config: "Callable[..., CellularPublisher]"


def __getattr__(name):
    # from_config(at, cfg, clock=None, log=None) (boot): a CellularPublisher with the keyword arguments
    # net/cellular_setup.py reads from the telelogger config dict (that module dropped again before
    # the publisher is made: the boot's heap peak). read_certs(certs) (secrets.json certificate
    # entries -> {role: bytes}), refusal_advice(e, host, port, tls): net/cellular_setup.py's,
    # imported for the access and dropped again (any other name: AttributeError from there)
    if name == "from_config":
        return lambda at, cfg, clock=None, log=None: CellularPublisher(
            at, clock, **lookup("net.cellular_setup", "from_config", cfg, log))
    return lookup("net.cellular_setup", "get", name)
