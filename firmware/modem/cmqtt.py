# MQTT client on the SIM7600's own stack (AT+CMQTT*), one client index per instance.
#
# Rules this driver keeps (sim7600-mqtt-at.md §1, §5 and "Two more protocol traps"):
# - Every asynchronous command waits for its `+CMQTTxxx: <idx>,<err>` result (before or after OK,
#   the engine's deferred-result support) before the next CMQTT command goes out.
# - Commands are serialised by one lock, and a gate also waits while an incoming message burst
#   (+CMQTTRXSTART .. +CMQTTRXEND) is in flight: sending then is what gives error 14.
# - "Connected" comes only from the `+CMQTTCONNECT: <idx>,0` result and goes away on the
#   +CMQTTCONNLOST / +CMQTTNONET / +CMQTTPING URCs or an error 11; never from an OK.
# - AT+CMQTTDISC? (state query) is never sent while a DISC is in flight: both share the lock and
#   its reply is byte-identical to the DISC result.
# - Topic/payload limits and UTF-8 are checked before anything is sent.
# - Incoming topic/payload chunks are read by byte count (engine body_len), so CR/LF and
#   chunking (<=1500 bytes) are preserved. A message is refused by the length +CMQTTRXSTART
#   announces, before any byte is buffered, above codes.RX_TOPIC_CAP / RX_PAYLOAD_CAP (256 / 2048
#   bytes): it is counted, logged and dropped, and the RX gate reopens at its +CMQTTRXEND. Any
#   error while assembling (MemoryError included) drops the message the same way.
# - Older module firmware: AT+CMQTTACCQ refusing the 4th (MQTT version) argument is retried
#   without it; AT+CMQTTCFG="checkUTF8" refused is logged and skipped.
import asyncio

from at.engine import ATCommandError, ATError, ATTimeout, ModemRebooted, default_meaning
from core.compat import DEFAULT_CLOCK
from core.errors import lookup
from modem import codes
from modem.cmqtt_rx import CmqttRx
from modem.cmqtt_errors import (  # noqa: F401 - re-exported: modem.cmqtt's public names
    CmqttArgError,
    CmqttError,
    _at_meaning,
    _to_bytes,
    check_payload,
    check_topic,
    cmqtt_error,
    parse_code,
    is_peer_refusal,
    is_refused,
    is_tls,
)

def _code_in_lines(lines, prefix):
    for ln in lines or ():
        if ln.startswith(prefix):
            return parse_code(ln[len(prefix) :])
    return None


class Cmqtt(CmqttRx):
    """One CMQTT client (index 0 or 1) on an ATEngine.

    Callbacks: on_message(cb) cb(topic: str, payload: bytes) — called from the engine's reader
    task: it must not block (queue work instead). on_state(cb) cb(connected: bool, why: str).
    """

    def __init__(self, at, clock=None, index=0, check_utf8=False, cmd_timeout_ms=5000, log=None):
        self.at = at
        self.clock = clock or DEFAULT_CLOCK
        self.idx = index
        self.check_utf8 = check_utf8
        self.cmd_timeout_ms = cmd_timeout_ms
        self.log = log
        self._lock = asyncio.Lock()
        self._down = asyncio.Event()  # set when the session goes down
        self._connected = False
        self.started = False
        self.acquired = False
        self.nonet = False  # +CMQTTNONET seen: the service needs STOP/START
        self.last_down = None  # why the session last went down
        self.disc_in_flight = False
        self._state_cb = None
        CmqttRx.__init__(self)
        self.accq_version = True  # send ACCQ's MQTT-version argument (older firmware refuses it)
        self.stats = {"busy_retries": 0, "rx": 0, "rx_dropped": 0}
        self._install_urcs()
        if at.meaning is default_meaning:
            at.meaning = _at_meaning

    # ------------------------------------------------------------------ URCs
    def _install_urcs(self):
        at = self.at
        at.on_urc("+CMQTTCONNLOST:", self._urc_down)
        at.on_urc("+CMQTTNONET", self._urc_down)
        at.on_urc("+CMQTTPING:", self._urc_down)
        at.on_urc("+CMQTTRXSTART:", self._urc_rxstart)
        at.on_urc("+CMQTTRXTOPIC:", self._urc_rxtopic, body_len=self._chunk_len)
        at.on_urc("+CMQTTRXPAYLOAD:", self._urc_rxpayload, body_len=self._chunk_len, secret=True)
        at.on_urc("+CMQTTRXEND:", self._urc_rxend)

    def _for_me(self, line):
        p = line.find(":")
        if p < 0:
            return True
        rest = line[p + 1 :].strip()
        return rest.split(",")[0].strip() == str(self.idx)

    def _set_down(self, why):
        was = self._connected
        self._connected = False
        self.last_down = why
        self._down.set()
        if was and self._state_cb:
            self._state_cb(False, why)

    def _urc_down(self, line, body=None):
        # +CMQTTCONNLOST / +CMQTTNONET / +CMQTTPING: the session is down (why: modem/cmqtt_rare.py)
        nonet = line.startswith("+CMQTTNONET")
        if not nonet and not self._for_me(line):
            return
        if nonet:
            self.nonet = True
        try:
            why = self._rare("down_reason", line)
        except Exception:  # noqa: BLE001 - no memory for the words: the session is down all the same
            why = line
        self._set_down(why)

    # ------------------------------------------------------------------ public state
    def on_message(self, cb):
        self._msg_cb = cb

    def on_state(self, cb):
        self._state_cb = cb

    def connected(self):
        return self._connected

    def rx_in_flight(self):
        return not self._rx_idle.is_set()

    # ------------------------------------------------------------------ command plumbing
    async def _gate(self):
        """Wait until no result is owed to a cancelled command of this client and no incoming
        message burst is in flight (both bounded): a command sent then gets error 14."""
        w = self.at.owed("+CMQTT")
        while w is not None:
            try:
                await self.clock.wait_for_ms(w.ev.wait(), 120000)
            except asyncio.TimeoutError:
                break
            w = self.at.owed("+CMQTT")
        if not self._rx_idle.is_set():
            try:
                await self.clock.wait_for_ms(self._rx_idle.wait(), 30000)
            except asyncio.TimeoutError:
                # a burst that never ended (lost bytes): forget it, the next command re-syncs
                self._rx_reset()
                self._rx_idle.set()
                self.rx_errors += 1

    async def _cmd(self, op, cmd, data=None, result=None, result_timeout_ms=None, timeout_ms=None, busy_retries=3):
        """Send one CMQTT command (caller holds the lock). Returns the <err> of the deferred
        result (0) or None for commands without one; raises CmqttError subclasses."""
        prefix = "+%s: " % op
        attempt = 0
        while True:
            await self._gate()
            try:
                kw = {"timeout_ms": timeout_ms or self.cmd_timeout_ms}
                if data is not None:
                    kw["data"] = data
                if result is not None:
                    kw["result"] = result
                    kw["result_timeout_ms"] = result_timeout_ms or 120000
                # a final result before the '>' prompt (noise forming 'OK') raises at.engine.ATNoPrompt:
                # the data was never written, so it must not pass as a topic/payload (error 1 below)
                r = await self.at.cmd(cmd, **kw)
                code = None
                if result is not None:
                    code = parse_code(r.result)
                else:
                    code = _code_in_lines(r.lines, prefix)
                if code:
                    raise cmqtt_error(op, code)
                return code
            except ModemRebooted:
                self._set_down("modem rebooted")
                self.started = self.acquired = False
                raise
            except ATTimeout as e:
                raise cmqtt_error(op, 17, "no reply from the modem to %s (%s)" % (e.cmd, e.msg))
            except CmqttError as e:
                err = e
            except ATError as e:
                code = self._code_from_exc(e, prefix, result)
                if code is None:
                    if isinstance(e, ATCommandError):
                        raise cmqtt_error(op, 1, "%s answered ERROR" % e.cmd)
                    raise cmqtt_error(op, 1, str(e))
                err = cmqtt_error(op, code)
            if err.code == 11:
                self._set_down("error 11 (no connection) on %s" % op)
            if err.code == 14 and attempt < busy_retries:
                attempt += 1
                self.stats["busy_retries"] += 1
                await self.clock.sleep_ms(100 * attempt)
                continue
            raise err

    @staticmethod
    def _code_from_exc(e, prefix, result):
        if isinstance(e, ATCommandError) and isinstance(e.code, int):
            return e.code
        code = _code_in_lines(getattr(e, "lines", None), prefix)
        if code is None and result is not None:
            code = parse_code(getattr(e, "result", None))
        return code

    # ------------------------------------------------------------------ service
    async def start(self):
        """AT+CMQTTSTART; a stale service (23 / 'client used') is cleaned up: DISC, REL, STOP, START."""
        async with self._lock:
            try:
                await self._cmd("CMQTTSTART", "AT+CMQTTSTART", result="+CMQTTSTART: ")
            except CmqttError as e:
                if e.code not in (19, 23):
                    raise
                await self._cleanup()
                await self._cmd("CMQTTSTART", "AT+CMQTTSTART", result="+CMQTTSTART: ")
            self.started = True
            self.nonet = False
            self.acquired = False

    async def acquire(self, client_id, tls=False):
        """AT+CMQTTACCQ (MQTT 3.1.1) then checkUTF8. A client left acquired (19) is released first.
        Older module firmware: ACCQ without the version argument (then 3.1.1 is its only
        protocol), and no checkUTF8 setting (logged; the module keeps its default)."""
        cid = _to_bytes(client_id)
        if not 1 <= len(cid) <= codes.CLIENT_ID_MAX or b'"' in cid:
            raise CmqttArgError("client id must be 1..%d bytes without '\"'" % codes.CLIENT_ID_MAX)
        base = 'AT+CMQTTACCQ=%d,"%s",%d' % (self.idx, str(cid, "utf-8"), 1 if tls else 0)
        async with self._lock:
            try:
                await self._cmd("CMQTTACCQ", base + ",4" if self.accq_version else base)
            except CmqttError as e:
                if e.code != 19 and (e.code not in (1, 12) or not self.accq_version):
                    raise
                await self._rare("accq_retry", base, e)
            self.acquired = True
            try:
                await self._cmd("CMQTTCFG", 'AT+CMQTTCFG="checkUTF8",%d,%d' % (self.idx, 1 if self.check_utf8 else 0))
            except CmqttError as e:
                if e.code not in (1, 12, 13):
                    raise
                self._rare("utf8_refused", e)

    async def connect(self, host, port=1883, keepalive=60, clean=True, user=None, password=None, ssl_ctx=None, timeout_ms=120000):
        """AT+CMQTTSSLCFG (re-issued every time: DISC and failed connects clear it) then
        AT+CMQTTCONNECT, returning only after `+CMQTTCONNECT: <idx>,0`."""
        addr = "tcp://%s:%d" % (host, port)
        if not 9 <= len(addr) <= 256:
            raise CmqttArgError("server address %r must be 9..256 characters" % addr)
        cmd = 'AT+CMQTTCONNECT=%d,"%s",%d,%d' % (self.idx, addr, keepalive, 1 if clean else 0)
        if user is not None:
            cmd += ',"%s"' % user
            if password is not None:
                cmd += ',"%s"' % password
        async with self._lock:
            if ssl_ctx is not None:
                await self._cmd("CMQTTSSLCFG", "AT+CMQTTSSLCFG=%d,%d" % (self.idx, ssl_ctx))
            self._down.clear()
            self.last_down = None
            await self._cmd("CMQTTCONNECT", cmd, result="+CMQTTCONNECT: %d," % self.idx, result_timeout_ms=timeout_ms, busy_retries=0)
            self._connected = True
            if self._state_cb:
                self._state_cb(True, "connected")

    # ------------------------------------------------------------------ messaging
    def _check_up(self, op):
        if not self._connected:
            raise cmqtt_error(op, 11, "not connected (%s)" % (self.last_down or "never connected"))

    async def publish(self, topic, payload, qos=1, retain=False, timeout_s=60):
        """TOPIC + PAYLOAD + PUB; returns after `+CMQTTPUB: <idx>,0` (for QoS 1/2 the modem got
        PUBACK/PUBCOMP). Topic and payload are cleared by the modem after each PUB, so both are
        sent every time."""
        t = check_topic(topic)
        p = check_payload(payload, utf8=self.check_utf8)
        if not 0 <= qos <= 2:
            raise CmqttArgError("qos must be 0, 1 or 2")
        timeout_s = max(codes.PUB_TIMEOUT_MIN, min(codes.PUB_TIMEOUT_MAX, timeout_s))
        async with self._lock:
            self._check_up("CMQTTPUB")
            await self._cmd("CMQTTTOPIC", "AT+CMQTTTOPIC=%d,%d" % (self.idx, len(t)), data=t)
            if p:
                await self._cmd("CMQTTPAYLOAD", "AT+CMQTTPAYLOAD=%d,%d" % (self.idx, len(p)), data=p)
            await self._cmd(
                "CMQTTPUB",
                "AT+CMQTTPUB=%d,%d,%d,%d" % (self.idx, qos, timeout_s, 1 if retain else 0),
                result="+CMQTTPUB: %d," % self.idx,
                result_timeout_ms=(timeout_s + 10) * 1000,
            )

    async def subscribe(self, topic, qos=1):
        """One topic: AT+CMQTTSUB=<idx>,<len>,<qos> with the topic at the prompt."""
        t = check_topic(topic)
        async with self._lock:
            self._check_up("CMQTTSUB")
            await self._cmd(
                "CMQTTSUB",
                "AT+CMQTTSUB=%d,%d,%d" % (self.idx, len(t), qos),
                data=t,
                result="+CMQTTSUB: %d," % self.idx,
                result_timeout_ms=70000,
            )

    # ------------------------------------------------------------------ rare operations (modem/cmqtt_rare.py)
    # (each takes the lock itself, as these methods did)
    def _rare(self, fn, *args):
        return lookup("modem.cmqtt_rare", fn, self, *args)

    async def _cleanup(self):
        await self._rare("cleanup")

    async def stop(self):
        await self._rare("stop")

    async def reset_service(self):
        """DISC/REL/STOP then START: recovery after +CMQTTNONET or a wedged client."""
        await self._rare("reset_service")

    async def release(self):
        await self._rare("release")

    async def set_will(self, topic, message, qos=1):
        await self._rare("set_will", topic, message, qos)

    async def disconnect(self, timeout_s=60):
        await self._rare("disconnect", timeout_s)

    async def query_connected(self):
        """AT+CMQTTDISC? - the modem's view (0 = connected); never sent while a DISC is in flight."""
        return await self._rare("query_connected")

    async def subscribe_many(self, topics):
        """Several topics in one SUBSCRIBE: SUBTOPIC per (topic, qos), then AT+CMQTTSUB=<idx>."""
        await self._rare("subscribe_many", topics)

    async def unsubscribe(self, topic):
        await self._rare("unsubscribe", topic)
