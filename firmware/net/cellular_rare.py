# The connect of net.cellular.CellularPublisher: the session's stages from the level the recovery asks
# for, and subscribe/unsubscribe. Runs at (re)connect, so it is not resident: CellularPublisher calls it
# through core.errors.lookup (imported for the call, dropped again; the settings, boot only, are
# net/cellular_setup.py's init: this module is in the heap through the whole connect, under the
# bring-up's and the CMQTT connect path's modules). What a failure leads to (the level it calls for,
# the backoff, the bounds, a refusal's advice; a failed publish or subscribe) is net/cellular_fail.py's,
# imported per failure: a reconnect that works does not load it. The levels (net/cellular.py's header):
#   L_CONNECT  SSLCFG + CONNECT                       (after +CMQTTCONNLOST / +CMQTTPING / error 11)
#   L_ACQUIRE  DISC/REL, ACCQ, CFG, WILL + L_CONNECT  (client wedged: 14 after retries, 19, 20)
#   L_SERVICE  DISC/REL/STOP, START + L_ACQUIRE       (+CMQTTNONET, 9, 23, timeouts)
#   L_MODEM    full bring-up + TLS + L_SERVICE        (RDY: the module rebooted)
# (few module globals: its dict table is one block, 8 bytes a slot; what one function alone uses is
# imported there)
import sys

from at.engine import ATError
from core.compat import const
from core.errors import lookup
from modem.errors import CmqttError, ModemError, hold

# the recovery levels (net/cellular.py's header; const(): no interned names, the same values there)
_L_CONNECT = const(0)
_L_ACQUIRE = const(1)
_L_SERVICE = const(2)
_L_MODEM = const(3)


# Cmqtt's rare operations this module calls (modem/cmqtt_svc.py's reset, modem/cmqtt_ops.py's will and several
# topics, through Cmqtt.__getattr__), by name:
# the strings of a constant tuple intern no name (mq.set_will would, whenever this module loads, while
# their modules are loaded only when one of them runs); getattr(mq, _OPS[i]) is mq.<name>
_OPS = ("reset_service", "set_will", "subscribe_many")


async def _subscribe(pub, topic, qos):
    """CellularPublisher.subscribe."""
    from modem.errors import check_topic

    check_topic(topic)
    known = pub._remember(topic, qos)
    if not pub.mq._connected:  # up first, as CellularPublisher._with_retry: the connect subscribes every
        await pub.connect()  # remembered topic, this one included
    elif not known:
        await pub._with_retry(pub.mq.subscribe, topic, qos)


async def unsubscribe(pub, topic):
    """CellularPublisher.unsubscribe (it looks nothing up here again: no hold)."""
    pub._subs = [s for s in pub._subs if s[0] != topic]
    if pub.mq._connected:
        await pub.mq.unsubscribe(topic)


async def session(pub, level, e=None):
    # each stage completed lowers the level the next connect needs to start from (pub._need = min(..));
    # an RDY or a failure raises it again. Each stage its own function (modem, acquire): each stays a
    # small block of bytecode, and their names are the attributes' already interned
    if level >= _L_MODEM:
        await modem(pub, e)
    elif pub.tls and not pub.cert_names and pub.certs:
        await lookup("net.cellular_setup", "tls", pub)
    clock = pub.clock
    t0 = clock.ticks_ms()
    # the service's reset (modem/cmqtt_svc.py's) before the connect path is loaded, not on top of it: with
    # both, a recovery from +CMQTTNONET was the network cut's heap peak
    start = await reset(pub, level)
    # the CMQTT connect path (start, acquire, connect, the subscribes after): modem/cmqtt_rare.py
    # loaded once for all of them instead of once per call (each load's transient allocations, on a
    # heap fragmented by the bring-up); _connect forgets it when the session is up or the attempt failed
    __import__("modem.cmqtt_rare")
    await acquire(pub, level, start)
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
            from modem import codes

            pub.log.warn(lookup(codes.TEXTS, "msg", 11), e)  # (the template of modem/code_table.py's M11)
        await pub.power_on()  # after a power loss the module is off: AT alone never wakes it
        await pub.bring_up()


async def reset(pub, level):
    """session's L_SERVICE stage on a started service: its reset (DISC/REL/STOP, START; modem/cmqtt_svc.py, no
    modem/cmqtt_rare.py needed). -> True when the service still needs its START (acquire's)."""
    mq = pub.mq
    if level >= _L_SERVICE and mq.started:
        await getattr(mq, _OPS[0])()  # reset_service
        return False
    return level >= _L_SERVICE or not mq.started


async def acquire(pub, level, start):
    """session's next stages: the service started (`start`: reset's answer), the client acquired, its will."""
    mq = pub.mq
    if start:
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
    from core.errors import forget

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
                # a CmqttError's words (modem/code_texts.py, for its log line and last_error) read now, with the
                # connect path gone, not on top of the failure half: that was the network cut's memory fault at 104K
                getattr(x, "name", 0)
                # its answer: raised, or the backoff waited and the next level (net/cellular_fail.py, for the call)
                level = await lookup("net.cellular_fail", "again", pub, x, attempt, level, t0)
        await up(pub)
    finally:
        if not had:
            forget("modem.cmqtt_rare")


# _connect's last step (a function of its own: a small block of bytecode)
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
