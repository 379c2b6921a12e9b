# The rare operations of the modem's MQTT client (modem.cmqtt.Cmqtt): service clean-up and
# restart, stop/release/disconnect, the will, several topics per SUBSCRIBE, UNSUBSCRIBE, the
# state query and the recoveries of ACCQ. Cmqtt imports this module for the call (through
# core.errors.lookup) and drops it again, so none of it is resident on the ESP32. Every function
# takes the Cmqtt first and is called with its lock held where the original method took it.
from modem import codes
from modem.cmqtt_errors import CmqttArgError, CmqttError, check_payload, check_topic, parse_code


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


def utf8_refused(mq, e):
    if mq.log:
        mq.log.warn("AT+CMQTTCFG=\"checkUTF8\" refused (%s): this module firmware keeps its default; it may refuse non-UTF-8 payloads (error 2)", e)


def down_reason(mq, line):
    """Why the session went down, from its URC line."""
    if line.startswith("+CMQTTNONET"):
        return "no network (+CMQTTNONET): service needs STOP/START"
    code = parse_code(line.split(":", 1)[1])
    if line.startswith("+CMQTTCONNLOST"):
        return "connection lost (cause %s: %s)" % (code, codes.connlost_cause(code))
    return "keep-alive ping failed (error %s: %s)" % (code, codes.cmqtt_meaning(code or 0))
