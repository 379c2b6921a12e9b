# The rare operations of the modem's MQTT client (modem.cmqtt.Cmqtt): the recovery of a refused ACCQ
# (cmqtt_rare's acquire), disconnect, the will, several topics per SUBSCRIBE, UNSUBSCRIBE, the state query
# (the service's clean-up, stop, reset and REL are modem/cmqtt_svc.py's).
# Cmqtt reaches them through Cmqtt.__getattr__ -> call() and core.errors.lookup: the module is
# imported for the call and dropped again (an operation keeps it imported while it runs:
# modem.errors.hold), so none of it is resident on the ESP32. Every function takes the Cmqtt first
# and takes its lock where the operation needs it.
import sys

from modem import codes
from modem.errors import CmqttArgError, CmqttError, check_payload, check_topic, hold, parse_code

_SELF = sys.modules[__name__]


def call(self, name, a, k):
    """Cmqtt.<name>(*a, **k) for the operations that live here (modem.cmqtt.Cmqtt.__getattr__)."""
    return hold(_SELF, globals()[name](self, *a, **k))


async def accq_refused(self, accq, e):
    """modem/cmqtt_rare.py acquire()'s AT+CMQTTACCQ failed with e (the lock is held): a client left
    acquired (19) is released (DISC/REL) and acquired again; ERROR / invalid parameter (1, 12) while the version
    argument is sent: this firmware does not know it, ACCQ without it (remembered). Anything else
    is raised. Here, not in cmqtt_rare: only a failed ACCQ needs it, not every connect."""
    if e.code != 19 and (e.code not in (1, 12) or not self.accq_version):
        raise e
    if e.code == 19:  # a client left acquired: DISC/REL, then again
        e = await again(self, accq)
        if e is None:
            return
    # ERROR / invalid parameter: this firmware does not know the 4th argument
    self.accq_version = False
    if self.log:
        self.log.warn("AT+CMQTTACCQ refused the MQTT version argument (%s): retrying without it", e)
    await self._cmd(None, accq[:-2])


async def again(self, accq):
    """accq_refused's answer to 19 (its own function: each stays a small block; its name is one the
    firmware interns already): DISC/REL, then ACCQ again; None when it took, the error when it
    refused the version argument."""
    for c, res in (
        ("AT+CMQTTDISC=%d,60" % self.idx, "+CMQTTDISC: %d," % self.idx),
        ("AT+CMQTTREL=%d" % self.idx, None),
    ):
        try:
            await self._cmd(None, c, result=res, busy_retries=1)
        except CmqttError:
            pass
    try:
        await self._cmd(None, accq if self.accq_version else accq[:-2])
        return None
    except CmqttError as e2:
        if e2.code not in (1, 12) or not self.accq_version:
            raise
        return e2


async def set_will(self, topic, message, qos=1):
    t = check_topic(topic, "will topic")
    m = check_payload(message, utf8=True, limit=codes.TOPIC_MAX)
    if not m:
        raise CmqttArgError("will message is empty (1..1024 bytes)")
    async with self._lock:
        await self._cmd("CMQTTWILLTOPIC", "AT+CMQTTWILLTOPIC=%d,%d" % (self.idx, len(t)), data=t)
        await self._cmd(None, "AT+CMQTTWILLMSG=%d,%d,%d" % (self.idx, len(m), qos), data=m)

async def disconnect(self, timeout_s=60):
    async with self._lock:
        self.disc_in_flight = True
        try:
            await self._cmd(
                None,
                "AT+CMQTTDISC=%d,%d" % (self.idx, timeout_s),
                result="+CMQTTDISC: %d," % self.idx,
                result_timeout_ms=(timeout_s + 10) * 1000,
                busy_retries=1,
            )
        finally:
            self.disc_in_flight = False
            self._set_down("disconnected by us")

async def query_connected(self):
    """AT+CMQTTDISC? — the modem's view (0 = connected). Shares the lock with DISC, so it is
    never sent while a DISC is in flight (same bytes as the DISC result)."""
    async with self._lock:
        if self.disc_in_flight:
            raise CmqttError("CMQTTDISC?", None, "refused: a DISC is in flight")
        await self._gate()
        r = await self.at.cmd("AT+CMQTTDISC?", timeout_ms=self.cmd_timeout_ms)
        prefix = "+CMQTTDISC: %d," % self.idx
        for ln in r.lines:
            if ln.startswith(prefix):
                return parse_code(ln[len(prefix) :]) == 0
        return False

async def subscribe_many(self, topics):
    """Several topics in one SUBSCRIBE: SUBTOPIC per (topic, qos), then AT+CMQTTSUB=<idx>."""
    items = [(check_topic(t), q) for t, q in topics]
    if not items:
        return
    if sum(len(t) for t, _ in items) > 5120:
        raise CmqttArgError("subscription topics total more than 5120 bytes", "topic")
    async with self._lock:
        self._check_up("CMQTTSUB")
        for t, q in items:
            await self._cmd("CMQTTSUBTOPIC", "AT+CMQTTSUBTOPIC=%d,%d,%d" % (self.idx, len(t), q), data=t)
        await self._cmd("CMQTTSUB", "AT+CMQTTSUB=%d" % self.idx, result="+CMQTTSUB: %d," % self.idx, result_timeout_ms=70000)

async def unsubscribe(self, topic):
    t = check_topic(topic)
    async with self._lock:
        self._check_up("CMQTTUNSUB")
        await self._cmd(
            "CMQTTUNSUB",
            "AT+CMQTTUNSUB=%d,%d,0" % (self.idx, len(t)),
            data=t,
            result="+CMQTTUNSUB: %d," % self.idx,
            result_timeout_ms=70000,
        )
