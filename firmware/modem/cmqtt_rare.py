# The connect path of the modem's MQTT client (modem.cmqtt.Cmqtt): START (with the clean-up of a
# stale service), ACCQ (its recoveries: modem/cmqtt_ops.py), CONNECT, SUBSCRIBE (the constructor and the callback
# setters are resident: they run on the boot peak). Cmqtt reaches these through Cmqtt.__getattr__ -> call() and core.errors.lookup:
# the module is imported for the call and dropped again, so none of it is resident on the ESP32;
# an operation keeps it imported while it runs (modem.errors.hold). The service's stop, reset and
# release are modem/cmqtt_svc.py's, the rare operations (will, disconnect, state query, several
# topics, unsubscribe) modem/cmqtt_ops.py's, the words for errors in modem/code_texts.py. Every function takes the Cmqtt
# first and takes its lock where the operation needs it.
# (few module globals: its dict table is one block, 8 bytes a slot, 17 slots for up to 17 names; what one
# function alone uses is imported there)
import sys

from core.errors import lookup
from modem.errors import CmqttArgError, CmqttError, hold


def call(self, name, a, k):
    """Cmqtt.<name>(*a, **k) for the methods that live here (modem.cmqtt._CONNECT). An operation
    (a coroutine) keeps this module imported while it runs (modem.errors.hold)."""
    r = globals()[name](self, *a, **k)
    return r if name == "rx_in_flight" else hold(sys.modules[__name__], r)

def rx_in_flight(self):
    return not self._rx_idle.is_set()

async def start(self):
    """AT+CMQTTSTART; a stale service (23 / 'client used') is cleaned up: DISC, REL, STOP, START."""
    async with self._lock:
        try:
            await self._cmd(None, "AT+CMQTTSTART", None, "+CMQTTSTART: ")
        except CmqttError as e:
            if e.code not in (19, 23):
                raise
            await lookup("modem.cmqtt_svc", "cleanup", self)  # DISC, REL, STOP
            await self._cmd(None, "AT+CMQTTSTART", None, "+CMQTTSTART: ")
        self.started = True
        self.nonet = False
        self.acquired = False

async def acquire(self, client_id, tls=False):
    """AT+CMQTTACCQ (MQTT 3.1.1) then checkUTF8. A client left acquired (19) is released first
    (DISC/REL, then ACCQ again). Older module firmware: ACCQ without the version argument (ERROR or
    12 for it: then 3.1.1 is its only protocol, remembered), and no checkUTF8 setting (logged; the
    module keeps its default)."""
    # the last argument, 4: MQTT 3.1.1; accq[:-2] is the command without it
    accq = command(self, client_id, tls)
    async with self._lock:
        try:
            await self._cmd(None, accq if self.accq_version else accq[:-2])
        except CmqttError as e:
            await lookup("modem.cmqtt_ops", "accq_refused", self, accq, e)  # a stale client, an older firmware
        self.acquired = True
        await check_utf8(self)


# acquire's and connect's steps, each its own function (each stays a small block of bytecode; their
# names are names the firmware interns already)
def command(self, client_id, tls):
    """acquire's AT+CMQTTACCQ line, with the version argument."""
    from modem import codes
    from modem.errors import _to_bytes

    cid = _to_bytes(client_id)
    if not 1 <= len(cid) <= codes.CLIENT_ID_MAX or b'"' in cid:
        raise CmqttArgError(lookup(codes.TEXTS, "msg", 8, (codes.CLIENT_ID_MAX,)))
    return 'AT+CMQTTACCQ=%d,"%s",%d,4' % (self.idx, str(cid, "utf-8"), 1 if tls else 0)


async def check_utf8(self):
    """acquire's checkUTF8 setting (the lock is held)."""
    try:
        await self._cmd(None, 'AT+CMQTTCFG="checkUTF8",%d,%d' % (self.idx, 1 if self.check_utf8 else 0))
    except CmqttError as e:
        if e.code not in (1, 12, 13):
            raise
        if self.log:
            from modem import codes

            self.log.warn(lookup(codes.TEXTS, "msg", 9), e)  # (the template of modem/code_table.py's M9)


def line(self, host, port, keepalive, clean, user, password):
    """connect's AT+CMQTTCONNECT line."""
    addr = "tcp://%s:%d" % (host, port)
    if not 9 <= len(addr) <= 256:
        from modem import codes

        raise CmqttArgError(lookup(codes.TEXTS, "msg", 10, (addr,)))
    cmd = 'AT+CMQTTCONNECT=%d,"%s",%d,%d' % (self.idx, addr, keepalive, 1 if clean else 0)
    if user is not None:
        cmd += ',"%s"' % user
        if password is not None:
            cmd += ',"%s"' % password
    return cmd


async def connect(self, host, port=1883, keepalive=60, clean=True, user=None, password=None, ssl_ctx=None, timeout_ms=120000):
    """AT+CMQTTSSLCFG (re-issued every time: DISC and failed connects clear it) then
    AT+CMQTTCONNECT, returning only after `+CMQTTCONNECT: <idx>,0`."""
    cmd = line(self, host, port, keepalive, clean, user, password)
    async with self._lock:
        if ssl_ctx is not None:
            await self._cmd("CMQTTSSLCFG", "AT+CMQTTSSLCFG=%d,%d" % (self.idx, ssl_ctx))
        self.last_down = None
        await self._cmd("CMQTTCONNECT", cmd, None, "+CMQTTCONNECT: %d," % self.idx, timeout_ms, 0)
        self._connected = True
        if self._state_cb:
            self._state_cb(True, "connected")

async def subscribe(self, topic, qos=1):
    """One topic: AT+CMQTTSUB=<idx>,<len>,<qos> with the topic at the prompt."""
    from modem.errors import check_topic

    t = check_topic(topic)
    async with self._lock:
        self._check_up("CMQTTSUB")
        await self._cmd("CMQTTSUB", "AT+CMQTTSUB=%d,%d,%d" % (self.idx, len(t), qos), t, "+CMQTTSUB: %d," % self.idx, 70000)
