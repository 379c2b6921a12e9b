# The connect path and the rare operations of the modem's MQTT client (modem.cmqtt.Cmqtt): START
# (with the clean-up of a stale service), ACCQ (and its recoveries), CONNECT, SUBSCRIBE, service
# clean-up and restart, stop/release/disconnect, the will, several topics per SUBSCRIBE,
# UNSUBSCRIBE, the state query; what a failed AT exchange means as a CmqttError; the words for a
# session that went down and for a dropped incoming message. Cmqtt looks an attribute it does not
# have up here (Cmqtt.__getattr__ -> method()) and calls the helpers by name (Cmqtt._rare), through
# core.errors.lookup: the module is imported for the call and dropped again, so none of it is
# resident on the ESP32. Every function takes the Cmqtt first and takes its lock where the
# operation needs it.
import asyncio

from at.engine import ATCommandError, ATTimeout, ModemRebooted, default_meaning
from core.compat import DEFAULT_CLOCK
from modem import codes
from modem.cmqtt_errors import CmqttArgError, CmqttError, _at_meaning, _to_bytes, check_payload, check_topic, parse_code

# Cmqtt's methods that live here
_METHODS = ("start", "acquire", "connect", "subscribe", "subscribe_many", "unsubscribe", "stop", "release",
            "reset_service", "set_will", "disconnect", "query_connected", "on_message", "on_state", "rx_in_flight")


def method(mq, name):
    """Cmqtt.<name>, bound to mq (Cmqtt.__getattr__); AttributeError for any other name."""
    if name not in _METHODS:
        raise AttributeError(name)
    f = globals()[name]

    def bound(*a, **k):
        return f(mq, *a, **k)

    return bound


def init(mq, at, clock, index, check_utf8, cmd_timeout_ms, log):
    """Cmqtt.__init__: the state and the URC handlers on the engine."""
    mq.at = at
    mq.clock = clock or DEFAULT_CLOCK
    mq.idx = index
    mq.check_utf8 = check_utf8
    mq.cmd_timeout_ms = cmd_timeout_ms
    mq.log = log
    mq._lock = asyncio.Lock()
    mq._connected = False
    mq.started = False
    mq.acquired = False
    mq.nonet = False
    mq.last_down = None
    mq.disc_in_flight = False
    mq._state_cb = None
    mq._msg_cb = None
    mq.accq_version = True
    mq.stats = {"busy_retries": 0, "rx": 0, "rx_dropped": 0}
    # incoming (Cmqtt's RX handlers): [topic, payload] buffers, positions, announced lengths
    mq._rx_idle = asyncio.Event()  # set while no incoming message burst is in flight
    mq._rx_idle.set()
    mq._rx_reset()
    mq._rx_len = (0, 0)
    on = at.on_urc
    on("+CMQTTCONNLOST:", mq._urc_down)
    on("+CMQTTNONET", mq._urc_down)
    on("+CMQTTPING:", mq._urc_down)
    on("+CMQTTRXSTART:", mq._urc_rxstart)
    on("+CMQTTRXTOPIC:", mq._urc_rxpart, body_len=mq._chunk_len)
    on("+CMQTTRXPAYLOAD:", mq._urc_rxpart, body_len=mq._chunk_len, secret=True)
    on("+CMQTTRXEND:", mq._urc_rxend)
    if at.meaning is default_meaning:
        at.meaning = _at_meaning


def on_message(mq, cb):
    mq._msg_cb = cb


def on_state(mq, cb):
    mq._state_cb = cb


def rx_in_flight(mq):
    return not mq._rx_idle.is_set()


async def start(mq):
    """AT+CMQTTSTART; a stale service (23 / 'client used') is cleaned up: DISC, REL, STOP, START."""
    async with mq._lock:
        try:
            await mq._cmd("CMQTTSTART", "AT+CMQTTSTART", None, "+CMQTTSTART: ")
        except CmqttError as e:
            if e.code not in (19, 23):
                raise
            await cleanup(mq)
            await mq._cmd("CMQTTSTART", "AT+CMQTTSTART", None, "+CMQTTSTART: ")
        mq.started = True
        mq.nonet = False
        mq.acquired = False


async def acquire(mq, client_id, tls=False):
    """AT+CMQTTACCQ (MQTT 3.1.1) then checkUTF8. A client left acquired (19) is released first.
    Older module firmware: ACCQ without the version argument (then 3.1.1 is its only
    protocol), and no checkUTF8 setting (logged; the module keeps its default)."""
    cid = _to_bytes(client_id)
    if not 1 <= len(cid) <= codes.CLIENT_ID_MAX or b'"' in cid:
        raise CmqttArgError("client id must be 1..%d bytes without '\"'" % codes.CLIENT_ID_MAX)
    base = 'AT+CMQTTACCQ=%d,"%s",%d' % (mq.idx, str(cid, "utf-8"), 1 if tls else 0)
    async with mq._lock:
        try:
            await mq._cmd("CMQTTACCQ", base + ",4" if mq.accq_version else base)
        except CmqttError as e:
            if e.code != 19 and (e.code not in (1, 12) or not mq.accq_version):
                raise
            await accq_retry(mq, base, e)
        mq.acquired = True
        try:
            await mq._cmd("CMQTTCFG", 'AT+CMQTTCFG="checkUTF8",%d,%d' % (mq.idx, 1 if mq.check_utf8 else 0))
        except CmqttError as e:
            if e.code not in (1, 12, 13):
                raise
            if mq.log:
                mq.log.warn("AT+CMQTTCFG=\"checkUTF8\" refused (%s): this module firmware keeps its default; it may refuse non-UTF-8 payloads (error 2)", e)


async def connect(mq, host, port=1883, keepalive=60, clean=True, user=None, password=None, ssl_ctx=None, timeout_ms=120000):
    """AT+CMQTTSSLCFG (re-issued every time: DISC and failed connects clear it) then
    AT+CMQTTCONNECT, returning only after `+CMQTTCONNECT: <idx>,0`."""
    addr = "tcp://%s:%d" % (host, port)
    if not 9 <= len(addr) <= 256:
        raise CmqttArgError("server address %r must be 9..256 characters" % addr)
    cmd = 'AT+CMQTTCONNECT=%d,"%s",%d,%d' % (mq.idx, addr, keepalive, 1 if clean else 0)
    if user is not None:
        cmd += ',"%s"' % user
        if password is not None:
            cmd += ',"%s"' % password
    async with mq._lock:
        if ssl_ctx is not None:
            await mq._cmd("CMQTTSSLCFG", "AT+CMQTTSSLCFG=%d,%d" % (mq.idx, ssl_ctx))
        mq.last_down = None
        await mq._cmd("CMQTTCONNECT", cmd, None, "+CMQTTCONNECT: %d," % mq.idx, timeout_ms, 0)
        mq._connected = True
        if mq._state_cb:
            mq._state_cb(True, "connected")


async def subscribe(mq, topic, qos=1):
    """One topic: AT+CMQTTSUB=<idx>,<len>,<qos> with the topic at the prompt."""
    t = check_topic(topic)
    async with mq._lock:
        mq._check_up("CMQTTSUB")
        await mq._cmd("CMQTTSUB", "AT+CMQTTSUB=%d,%d,%d" % (mq.idx, len(t), qos), t, "+CMQTTSUB: %d," % mq.idx, 70000)


def at_error(mq, op, result, e):
    """The CmqttError a failed AT exchange of `op` means (e: an at.engine.ATError). ModemRebooted
    takes the session down and is raised as it is."""
    if isinstance(e, ModemRebooted):
        mq._set_down("modem rebooted")
        mq.started = mq.acquired = False
        raise e
    if isinstance(e, ATTimeout):
        return CmqttError(op, 17, "no reply from the modem to %s (%s)" % (e.cmd, e.msg))
    prefix = "+%s: " % op
    code = e.code if isinstance(e, ATCommandError) and isinstance(e.code, int) else None
    if code is None:
        for ln in getattr(e, "lines", None) or ():
            if ln.startswith(prefix):
                code = parse_code(ln[len(prefix) :])
                break
    if code is None and result is not None:
        code = parse_code(getattr(e, "result", None))
    if code is None:
        return CmqttError(op, 1, "%s answered ERROR" % e.cmd if isinstance(e, ATCommandError) else str(e))
    return CmqttError(op, code)


def arg_error(b, what, limit=0):
    """The CmqttArgError for a topic (what: "topic", "will topic") or a payload (what None, at most
    `limit` bytes) that check_topic / check_payload refused."""
    n = len(b)
    if what is None:
        if n > limit:
            return CmqttArgError("payload is %d bytes, the SIM7600 allows at most %d" % (n, limit), "payload")
        return CmqttArgError("payload is not valid UTF-8 and checkUTF8 is on (set check_utf8=False for binary)", "utf8")
    if not n:
        return CmqttArgError("%s is empty (1..%d bytes)" % (what, codes.TOPIC_MAX), "topic")
    if n > codes.TOPIC_MAX:
        return CmqttArgError("%s is %d bytes, the SIM7600 allows 1..%d" % (what, n, codes.TOPIC_MAX), "topic")
    return CmqttArgError("%s is not valid UTF-8 (MQTT topics must be)" % what, "utf8")


_RX_DROP = (
    "announced topic %d / payload %d bytes, more than this firmware accepts (%d / %d)",
    "out of memory for a %d-byte message",
    "more bytes than announced",
    "over %d bytes (length not announced)",
    "out of memory",
    "no +CMQTTRXSTART",
    "length mismatch: topic %d/%d payload %d/%d",
)


def rx_dropped(mq, drop):
    """Log why an incoming message was dropped; drop: (n, args...) from Cmqtt's RX handlers."""
    args = drop[1:] + ((codes.RX_TOPIC_CAP, codes.RX_PAYLOAD_CAP) if drop[0] == 0 else ())
    mq.log.warn("incoming message dropped: %s", _RX_DROP[drop[0]] % args if args else _RX_DROP[drop[0]])


async def cleanup(mq):
    """Best effort: leave the modem's MQTT service stopped. Errors are expected here."""
    for op, cmd, res in (
        ("CMQTTDISC", "AT+CMQTTDISC=%d,60" % mq.idx, "+CMQTTDISC: %d," % mq.idx),
        ("CMQTTREL", "AT+CMQTTREL=%d" % mq.idx, None),
        ("CMQTTSTOP", "AT+CMQTTSTOP", "+CMQTTSTOP: "),
    ):
        try:
            mq.disc_in_flight = op == "CMQTTDISC"
            await mq._cmd(op, cmd, result=res, result_timeout_ms=70000, busy_retries=1)
        except CmqttError:
            pass
        finally:
            mq.disc_in_flight = False
    mq._connected = False
    mq.acquired = False
    mq.started = False


async def stop(mq):
    async with mq._lock:
        await mq._cmd("CMQTTSTOP", "AT+CMQTTSTOP", result="+CMQTTSTOP: ")
        mq.started = False


async def reset_service(mq):
    """DISC/REL/STOP then START: recovery after +CMQTTNONET or a wedged client."""
    async with mq._lock:
        await cleanup(mq)
        await mq._cmd("CMQTTSTART", "AT+CMQTTSTART", result="+CMQTTSTART: ")
        mq.started = True
        mq.nonet = False


async def release(mq):
    async with mq._lock:
        await mq._cmd("CMQTTREL", "AT+CMQTTREL=%d" % mq.idx)
        mq.acquired = False


async def set_will(mq, topic, message, qos=1):
    t = check_topic(topic, "will topic")
    m = check_payload(message, utf8=True, limit=codes.TOPIC_MAX)
    if not m:
        raise CmqttArgError("will message is empty (1..1024 bytes)")
    async with mq._lock:
        await mq._cmd("CMQTTWILLTOPIC", "AT+CMQTTWILLTOPIC=%d,%d" % (mq.idx, len(t)), data=t)
        await mq._cmd("CMQTTWILLMSG", "AT+CMQTTWILLMSG=%d,%d,%d" % (mq.idx, len(m), qos), data=m)


async def disconnect(mq, timeout_s=60):
    async with mq._lock:
        mq.disc_in_flight = True
        try:
            await mq._cmd(
                "CMQTTDISC",
                "AT+CMQTTDISC=%d,%d" % (mq.idx, timeout_s),
                result="+CMQTTDISC: %d," % mq.idx,
                result_timeout_ms=(timeout_s + 10) * 1000,
                busy_retries=1,
            )
        finally:
            mq.disc_in_flight = False
            mq._set_down("disconnected by us")


async def query_connected(mq):
    """AT+CMQTTDISC? — the modem's view (0 = connected). Shares the lock with DISC, so it is
    never sent while a DISC is in flight (same bytes as the DISC result)."""
    async with mq._lock:
        if mq.disc_in_flight:
            raise CmqttError("CMQTTDISC?", None, "refused: a DISC is in flight")
        await mq._gate()
        r = await mq.at.cmd("AT+CMQTTDISC?", timeout_ms=mq.cmd_timeout_ms)
        prefix = "+CMQTTDISC: %d," % mq.idx
        for ln in r.lines:
            if ln.startswith(prefix):
                return parse_code(ln[len(prefix) :]) == 0
        return False


async def subscribe_many(mq, topics):
    """Several topics in one SUBSCRIBE: SUBTOPIC per (topic, qos), then AT+CMQTTSUB=<idx>."""
    items = [(check_topic(t), q) for t, q in topics]
    if not items:
        return
    if sum(len(t) for t, _ in items) > 5120:
        raise CmqttArgError("subscription topics total more than 5120 bytes", "topic")
    async with mq._lock:
        mq._check_up("CMQTTSUB")
        for t, q in items:
            await mq._cmd("CMQTTSUBTOPIC", "AT+CMQTTSUBTOPIC=%d,%d,%d" % (mq.idx, len(t), q), data=t)
        await mq._cmd("CMQTTSUB", "AT+CMQTTSUB=%d" % mq.idx, result="+CMQTTSUB: %d," % mq.idx, result_timeout_ms=70000)


async def unsubscribe(mq, topic):
    t = check_topic(topic)
    async with mq._lock:
        mq._check_up("CMQTTUNSUB")
        await mq._cmd(
            "CMQTTUNSUB",
            "AT+CMQTTUNSUB=%d,%d,0" % (mq.idx, len(t)),
            data=t,
            result="+CMQTTUNSUB: %d," % mq.idx,
            result_timeout_ms=70000,
        )


async def accq_retry(mq, base, e):
    """ACCQ failed with e: 19 (a client left acquired: DISC/REL, then again) or, on older module
    firmware, ERROR/12 for the MQTT-version argument (then without it, remembered)."""
    if e.code == 19:
        for op, c, res in (
            ("CMQTTDISC", "AT+CMQTTDISC=%d,60" % mq.idx, "+CMQTTDISC: %d," % mq.idx),
            ("CMQTTREL", "AT+CMQTTREL=%d" % mq.idx, None),
        ):
            try:
                await mq._cmd(op, c, result=res, busy_retries=1)
            except CmqttError:
                pass
        try:
            await mq._cmd("CMQTTACCQ", base + ",4" if mq.accq_version else base)
            return
        except CmqttError as e2:
            if e2.code not in (1, 12) or not mq.accq_version:
                raise
            e = e2
    # ERROR / invalid parameter: this firmware does not know the 4th argument
    mq.accq_version = False
    if mq.log:
        mq.log.warn("AT+CMQTTACCQ refused the MQTT version argument (%s): retrying without it", e)
    await mq._cmd("CMQTTACCQ", base)


def down_reason(mq, line):
    """Why the session went down, from its URC line."""
    if line.startswith("+CMQTTNONET"):
        return "no network (+CMQTTNONET): service needs STOP/START"
    code = parse_code(line.split(":", 1)[1])
    if line.startswith("+CMQTTCONNLOST"):
        return "connection lost (cause %s: %s)" % (code, codes.connlost_cause(code))
    return "keep-alive ping failed (error %s: %s)" % (code, codes.cmqtt_meaning(code or 0))
