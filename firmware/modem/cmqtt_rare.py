# The connect path of the modem's MQTT client (modem.cmqtt.Cmqtt): its construction (init), START
# (with the clean-up of a stale service), ACCQ (and its recoveries), CONNECT, SUBSCRIBE and the
# callback setters. Cmqtt reaches these through Cmqtt.__getattr__ -> call() and core.errors.lookup:
# the module is imported for the call and dropped again, so none of it is resident on the ESP32;
# an operation keeps it imported while it runs (modem.errors.hold). The rare operations (stop,
# release, reset, will, disconnect, state query, several topics, unsubscribe) are in
# modem/cmqtt_ops.py, the words for errors in modem/code_texts.py. Every function takes the Cmqtt
# first and takes its lock where the operation needs it.
import asyncio
import sys

from at.engine import default_meaning
from core.compat import DEFAULT_CLOCK
from core.errors import lookup
from modem import codes
from modem.cmqtt_errors import CmqttArgError, CmqttError, _at_meaning, _to_bytes, check_topic
from modem.errors import hold

_SELF = sys.modules[__name__]

def call(mq, name, a, k):
    """Cmqtt.<name>(*a, **k) for the methods that live here (modem.cmqtt._CONNECT). An operation
    (a coroutine) keeps this module imported while it runs (modem.errors.hold)."""
    r = globals()[name](mq, *a, **k)
    return r if name in ("on_message", "on_state", "rx_in_flight") else hold(_SELF, r)

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
            await lookup("modem.cmqtt_ops", "cleanup", mq)  # DISC, REL, STOP
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
