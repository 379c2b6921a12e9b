# The rare operations of the modem's MQTT client (modem.cmqtt.Cmqtt): service clean-up and restart,
# stop/release/disconnect, the will, several topics per SUBSCRIBE, UNSUBSCRIBE, the state query.
# Cmqtt reaches them through Cmqtt.__getattr__ -> call() and core.errors.lookup: the module is
# imported for the call and dropped again (an operation keeps it imported while it runs:
# modem.errors.hold), so none of it is resident on the ESP32. Every function takes the Cmqtt first
# and takes its lock where the operation needs it.
import sys

from modem import codes
from modem.cmqtt_errors import CmqttArgError, CmqttError, check_payload, check_topic, parse_code
from modem.errors import hold

_SELF = sys.modules[__name__]


def call(mq, name, a, k):
    """Cmqtt.<name>(*a, **k) for the operations that live here (modem.cmqtt._OPS)."""
    return hold(_SELF, globals()[name](mq, *a, **k))


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
