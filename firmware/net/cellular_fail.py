# What a failure of net.cellular.CellularPublisher leads to: the recovery level it calls for, the
# backoff before the next connect attempt and the bounds on them (attempts, time budget), the advice for
# a session the broker or the TLS peer refused, and a failed publish or subscribe (raised, or the session
# marked for a fresh connect). Imported per failure through core.errors.lookup and dropped again: a
# reconnect that works (net/cellular_rare.py, the session's stages) never loads it, and a failure does not
# keep the connect path's modules (modem.cmqtt_rare) loaded beside it. The levels (net/cellular.py's header):
#   L_CONNECT  SSLCFG + CONNECT                       (after +CMQTTCONNLOST / +CMQTTPING / error 11)
#   L_ACQUIRE  DISC/REL, ACCQ, CFG, WILL + L_CONNECT  (client wedged: 14 after retries, 19, 20)
#   L_SERVICE  DISC/REL/STOP, START + L_ACQUIRE       (+CMQTTNONET, 9, 23, timeouts)
#   L_MODEM    full bring-up + TLS + L_SERVICE        (RDY: the module rebooted)
from at.engine import ATError
from core.compat import const
from core.errors import lookup
from modem import codes  # the families of CMQTT <err> codes
from modem.errors import CmqttError, ModemError

# the recovery levels (net/cellular.py's header; const(): no interned names, the same values there)
_L_CONNECT = const(0)
_L_ACQUIRE = const(1)
_L_SERVICE = const(2)
_L_MODEM = const(3)


def fatal(e):
    """Retrying cannot fix it: the configuration must change (credentials, certificates, ...)."""
    from modem.errors import CmqttArgError
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


# net/cellular_rare.py's _connect asks again() after each failed attempt (tries: the attempt's number);
# again's steps are functions of their own (each a small block of bytecode, named with names already interned)
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


def refused(pub, e):
    msg = lookup("net.cellular_setup", "refusal_advice", e, pub.host, pub.port, pub.tls)
    pub.stats["last_error"] = msg
    pub.stats["refusals"] += 1
    if pub.log:
        pub.log.warn("MQTT CONNECT: %s", msg)


def failed(pub, e, tries):
    """A publish/subscribe raised e (the tries-th failure of this one): raise e when retrying
    cannot help or the resends are used up; otherwise mark the session for a fresh connect."""
    pub._error(e)
    if fatal(e) or not isinstance(e, (CmqttError, ATError)):
        raise e
    if isinstance(e, CmqttError) and e.code in (2, 12, 18, 22):
        raise e  # the modem refused this one message (bad UTF-8, parameter, length)
    mq = pub.mq
    lvl = escalate(pub, e)  # (a refusal's -1 raises no level, as L_CONNECT; after a NONET net.cellular's connect
    if lvl > pub._need:  # starts at L_SERVICE whatever is asked here)
        pub._need = lvl
    if mq._connected:
        # still "up" per the URCs but the command failed: force a fresh session
        mq._set_down("command failed: %s" % e)
    if tries > pub.max_resends:
        raise e
    pub.stats["resends"] += 1
