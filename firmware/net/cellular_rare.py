# The recovery of net.cellular.CellularPublisher: the connect with its escalating levels and backoff, and what a failed publish/subscribe leads to.
# Runs at (re)connect and after a failure, so it is not resident: CellularPublisher calls it
# through core.errors.lookup (imported for the call, dropped again; the settings, boot only, are
# net/cellular_setup.py's init: this module is in the heap through the whole connect, under the
# bring-up's and the CMQTT connect path's modules). The levels (net/cellular.py's header):
#   L_CONNECT  SSLCFG + CONNECT                       (after +CMQTTCONNLOST / +CMQTTPING / error 11)
#   L_ACQUIRE  DISC/REL, ACCQ, CFG, WILL + L_CONNECT  (client wedged: 14 after retries, 19, 20)
#   L_SERVICE  DISC/REL/STOP, START + L_ACQUIRE       (+CMQTTNONET, 9, 23, timeouts)
#   L_MODEM    full bring-up + TLS + L_SERVICE        (RDY: the module rebooted)
# (few module globals: its dict table is one block, 8 bytes a slot, 29 slots for up to 29 names; what one
# function alone uses is imported there)
import sys

from at.engine import ATError
from core.compat import const
from core.errors import lookup
from modem import codes  # the families of CMQTT <err> codes
from modem.cmqtt_errors import CmqttError
from modem.errors import ModemError, hold

# the recovery levels (net/cellular.py's header; const(): no interned names, the same values there)
_L_CONNECT = const(0)
_L_ACQUIRE = const(1)
_L_SERVICE = const(2)
_L_MODEM = const(3)


# Cmqtt's rare operations this module calls (modem/cmqtt_ops.py, through Cmqtt.__getattr__), by name:
# the strings of a constant tuple intern no name (mq.set_will would, whenever this module loads, while
# cmqtt_ops itself is loaded only when one of them runs); getattr(mq, _OPS[i]) is mq.<name>
_OPS = ("reset_service", "set_will", "subscribe_many")


async def _subscribe(pub, topic, qos):
    """CellularPublisher.subscribe."""
    from modem.cmqtt_errors import check_topic

    check_topic(topic)
    known = pub._remember(topic, qos)
    mq = pub.mq
    if not mq._connected:  # up first, as CellularPublisher._with_retry: the connect subscribes every
        if mq.nonet and pub._need < _L_SERVICE:  # remembered topic, this one included
            pub._need = _L_SERVICE
        await pub.connect()
    elif not known:
        await pub._with_retry(pub.mq.subscribe, topic, qos)


async def unsubscribe(pub, topic):
    """CellularPublisher.unsubscribe (it looks nothing up here again: no hold)."""
    pub._subs = [s for s in pub._subs if s[0] != topic]
    if pub.mq._connected:
        await pub.mq.unsubscribe(topic)


def fatal(e):
    """Retrying cannot fix it: the configuration must change (credentials, certificates, ...)."""
    from modem.cmqtt_errors import CmqttArgError
    from modem.errors import TlsSetupError

    if isinstance(e, (TlsSetupError, CmqttArgError)):
        return True
    # the code families: modem/code_events.py's (the words of e are modem/code_texts.py's, read when it is logged)
    return isinstance(e, CmqttError) and lookup(codes.EVENTS, "is_config_refusal", e.code)


def escalate(pub, e):
    """The recovery level a failure calls for; -1 for a session the broker or the TLS peer refused
    (a CONNECT refusal: not a modem fault, the retry is at the MQTT level)."""
    from at.engine import REBOOTED

    if isinstance(e, ModemError) or getattr(e, "kind", None) == REBOOTED:  # an ATError's kind is an int (a NetError's a str)
        return _L_MODEM
    code = e.code if isinstance(e, CmqttError) else None
    if code is not None and e.op == "CMQTTCONNECT" and lookup(codes.EVENTS, "is_peer_refusal", code):
        return -1
    if pub.mq.nonet or code in (9, 17, 23):
        return _L_SERVICE
    if code in (14, 19, 20):
        return _L_ACQUIRE
    return _L_SERVICE if isinstance(e, ATError) else _L_CONNECT


async def session(pub, level, e=None):
    # each stage completed lowers the level the next connect needs to start from (pub._need = min(..));
    # an RDY or a failure raises it again. Each stage its own function (modem, acquire): each stays a
    # small block of bytecode, and their names are the attributes' already interned
    if level >= _L_MODEM:
        await modem(pub, e)
    elif pub.tls and not pub.cert_names and pub.certs:
        await lookup("net.cellular_setup", "tls", pub)
    # the CMQTT connect path (start, acquire, connect, the subscribes after): modem/cmqtt_rare.py
    # loaded once for all of them instead of once per call (each load's transient allocations, on a
    # heap fragmented by the bring-up); _connect forgets it when the session is up or the attempt failed
    __import__("modem.cmqtt_rare")
    clock = pub.clock
    t0 = clock.ticks_ms()
    await acquire(pub, level)
    pub._need = min(pub._need, _L_CONNECT)
    await pub.mq.connect(pub.host, pub.port, pub.keepalive, pub.clean, pub.user, pub.password,
                         ssl_ctx=pub.ssl_ctx if pub.tls else None)
    pub.stats["connect_ms"] = clock.diff(clock.ticks_ms(), t0)


async def modem(pub, e=None):
    """session's L_MODEM stage: the full bring-up (a power-key press when the module is off), TLS. e: the
    bring-up (or TLS set-up) net.cellular's connect tried first failed with e; it is this stage's failure."""
    try:
        if e is not None:
            raise e
        await pub.bring_up()  # (the bring-up, TLS, the level: net.cellular's)
    except ModemError as e:
        if pub.power_on is None or getattr(e, "kind", None) != "not_responding":
            raise
        if pub.log:
            pub.log.warn("modem does not answer (%s): pressing its power key", e)
        await pub.power_on()  # after a power loss the module is off: AT alone never wakes it
        await pub.bring_up()


async def acquire(pub, level):
    """session's L_SERVICE and L_ACQUIRE stages: the service (re)started, the client acquired, its will."""
    mq = pub.mq
    if level >= _L_SERVICE and mq.started:
        await getattr(mq, _OPS[0])()  # reset_service
    elif level >= _L_SERVICE or not mq.started:
        await mq.start()  # cleans up a stale service (23 / 19) left from before a reset
    pub._need = min(pub._need, _L_ACQUIRE)
    if level >= _L_ACQUIRE or not mq.acquired:
        if mq.acquired:
            try:
                await mq.release()
            except CmqttError:
                pass
        await mq.acquire(pub.client_id, tls=pub.tls)
        if pub.will:
            await getattr(mq, _OPS[1])(*pub.will)  # set_will


def refused(pub, e):
    msg = lookup("net.cellular_setup", "refusal_advice", e, pub.host, pub.port, pub.tls)
    pub.stats["last_error"] = msg
    pub.stats["refusals"] += 1
    if pub.log:
        pub.log.warn("MQTT CONNECT: %s", msg)


# The coroutines CellularPublisher awaits keep this module imported while they run (modem.errors.hold):
# what they look up here again (a nested connect, a failed subscribe) reuses it.
def connect(pub, e=None):
    return hold(sys.modules[__name__], _connect(pub, e))


def subscribe(pub, topic, qos=1):
    return hold(sys.modules[__name__], _subscribe(pub, topic, qos))


async def _connect(pub, e=None):
    """Bring the session up: escalating recovery with backoff (Publisher.connect is single-flight). e: the
    failure of the bring-up net.cellular's connect did before (its first attempt's, at L_MODEM)."""
    from core.errors import NetError
    from core.unload import forget

    had = "modem.cmqtt_rare" in sys.modules  # (session loads it; forgotten again unless someone else had it)
    try:
        attempt = 0
        level = pub._need
        t0 = pub.clock.ticks_ms()
        while True:
            try:
                first, e = e, None  # (the bring-up's failure counts for the first attempt only)
                await session(pub, level, first)
                break
            except (NetError, ATError) as x:
                if not had:
                    forget("modem.cmqtt_rare")  # not through the backoff and the next attempt's bring-up
                attempt += 1
                level = await again(pub, x, attempt, level, t0)
        await up(pub)
    finally:
        if not had:
            forget("modem.cmqtt_rare")


# _connect's steps, each its own function (each stays a small block of bytecode; their names and
# arguments are names the firmware interns already: tries is the attempt's number)
async def again(pub, e, tries, level, t0):
    """_connect's answer to its failed attempt number `tries` (at `level`): raises when retrying
    cannot help or the attempts / the budget are used up, else waits the backoff and returns the
    level of the next attempt."""
    from net.publisher import backoff_ms

    pub._error(e)
    lvl = escalate(pub, e)
    refusal = lvl < 0
    if refusal:
        refused(pub, e)
    if fatal(e):
        raise e
    if pub.log and not refusal:
        pub.log.warn("connect attempt %d (level %d) failed: %s", tries, level, e)
    check(pub, e, tries, t0)
    if refusal:
        level = _L_ACQUIRE  # REL/ACCQ + CONNECT: no STOP/START, no registration
    else:
        level = min(max(level + 1, lvl), _L_MODEM)
        if level > pub._need:
            pub._need = level
    await pub.clock.sleep_ms(backoff_ms(tries, pub.backoff_ms, pub.backoff_max_ms, pub.rng))
    return level


def check(pub, e, tries, t0):
    """again's bound: NotConnected when the attempts or the time budget are used up."""
    from core.errors import NotConnected

    clock = pub.clock
    spent = clock.diff(clock.ticks_ms(), t0)
    if tries >= pub.max_attempts or spent >= pub.connect_budget_ms:
        raise NotConnected("MQTT connect failed after %d attempts in %d s: %s" % (tries, spent // 1000, e),
                           getattr(e, "code", None), getattr(e, "meaning", None))


async def up(pub):
    """_connect's end: the session is up; counted, and the remembered topics subscribed again."""
    pub._need = _L_CONNECT
    st = pub.stats
    if st["connects"]:  # connected before: this one is a reconnect
        st["reconnects"] += 1
    st["connects"] += 1
    subs = pub._subs
    if len(subs) == 1:
        await pub.mq.subscribe(subs[0][0], subs[0][1])
    elif subs:
        for i in range(0, len(subs), 10):  # at most ten topics per SUBSCRIBE
            await getattr(pub.mq, _OPS[2])(subs[i : i + 10])  # subscribe_many


def failed(pub, e, tries):
    """A publish/subscribe raised e (the tries-th failure of this one): raise e when retrying
    cannot help or the resends are used up; otherwise mark the session for a fresh connect."""
    pub._error(e)
    if fatal(e) or not isinstance(e, (CmqttError, ATError)):
        raise e
    if isinstance(e, CmqttError) and e.code in (2, 12, 18, 22):
        raise e  # the modem refused this one message (bad UTF-8, parameter, length)
    mq = pub.mq
    lvl = escalate(pub, e)  # (a refusal's -1 raises no level, as L_CONNECT)
    if mq.nonet and lvl < _L_SERVICE:
        lvl = _L_SERVICE
    if lvl > pub._need:
        pub._need = lvl
    if mq._connected:
        # still "up" per the URCs but the command failed: force a fresh session
        mq._set_down("command failed: %s" % e)
    if tries > pub.max_resends:
        raise e
    pub.stats["resends"] += 1
