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
#
# RAM: what stays resident is the publish path, the URC handlers of the session state, the one of
# incoming messages (which imports modem/cmqtt_rx.py per line), the constructor, the callback setters
# and the command plumbing. The connect path (start, acquire, connect, subscribe) is in modem/cmqtt_rare.py, the rare operations (stop, release,
# reset_service, set_will, disconnect, query_connected, subscribe_many, unsubscribe) in
# modem/cmqtt_ops.py, the classification of a failed command, the errors of a refused argument and
# a command without a session and the words of a dropped message in modem/code_events.py, why a
# session went down in modem/code_texts.py: each imported for the call (Cmqtt.__getattr__,
# core.errors.lookup) and dropped again. check_topic, check_payload, CmqttError and CmqttArgError are
# modem/errors.py's, re-exported here; the code families is_refused / is_tls / is_peer_refusal
# modem/code_events.py's (the module __getattr__).
import asyncio

from at.engine import ERROR, UNSOLICITED, ATError, response_prefix
from core.compat import DEFAULT_CLOCK, const
from core.errors import lookup
from modem.codes import EVENTS, PUB_TIMEOUT_MAX, PUB_TIMEOUT_MIN, TEXTS
from modem.errors import (  # noqa: F401 - re-exported: modem.cmqtt's public names
    CmqttArgError,
    CmqttError,
    _at_meaning,
    _to_bytes,
    check_payload,
    check_topic,
    parse_code,
)


def __getattr__(name):
    # the families of <err> codes (is_refused, is_tls, is_peer_refusal: modem/code_events.py's), for tools
    # and tests (the recovery, net/cellular_rare.py, looks them up there per failure), through modem/code_texts.py
    return lookup(TEXTS, "attr", name)
_E = const(69)  # line[8]: 'E' of +CMQTTRXEND


class Cmqtt:
    """One CMQTT client (index 0 or 1) on an ATEngine.

    Callbacks: on_message(cb) cb(topic: str, payload: bytes) — called from the engine's reader
    task: it must not block (queue work instead). on_state(cb) cb(connected: bool, why: str).
    rx_in_flight(): an incoming message burst is being received (the RX gate is shut).
    """

    # The attributes (set by __init__); besides these: at (the ATEngine), clock (core.compat.Clock), log (core.log.Log or None).
    idx: int  # the client index
    check_utf8: bool
    cmd_timeout_ms: int
    started: bool  # AT+CMQTTSTART done (the service runs)
    acquired: bool  # AT+CMQTTACCQ done
    nonet: bool  # +CMQTTNONET seen: the service needs STOP/START
    last_down: "str | None"  # why the session last went down
    disc_in_flight: bool
    accq_version: bool  # send ACCQ's MQTT-version argument (older firmware refuses it)
    stats: dict  # busy_retries, rx (messages delivered), rx_dropped (messages dropped)
    _lock: asyncio.Lock  # one command at a time
    _rx_idle: asyncio.Event  # set while no incoming message burst is in flight

    def __init__(self, at, clock=None, index=0, check_utf8=False, cmd_timeout_ms=5000, log=None):
        # resident (not cmqtt_rare's): the publisher is built on the boot peak, where importing
        # modem/cmqtt_rare.py for the constructor and the setters is what does not fit
        self.at = at
        self.clock = clock or DEFAULT_CLOCK
        self.idx = index
        self.check_utf8 = check_utf8
        self.cmd_timeout_ms = cmd_timeout_ms
        self.log = log
        self._lock = asyncio.Lock()
        self._connected = self.started = self.acquired = self.nonet = self.disc_in_flight = False
        self.last_down = self._state_cb = self._msg_cb = None
        self.accq_version = True
        self.stats = {"busy_retries": 0, "rx": 0, "rx_dropped": 0}
        # incoming (modem/cmqtt_rx.py): [topic, payload] buffers, positions, announced lengths
        self._rx_idle = asyncio.Event()  # set while no incoming message burst is in flight
        self._rx_idle.set()
        self._rx_reset()
        self._rx_len = (0, 0)
        on = at.on_urc
        for p in UNSOLICITED[6:9]:  # +CMQTTNONET, +CMQTTCONNLOST:, +CMQTTPING: (at.reader's texts)
            on(p, self._urc_down)
        rx = self._urc_rx
        on("+CMQTTRXSTART:", rx)
        # '+CMQTTRXTOPIC: 0,21': 21 raw bytes follow the line (the number after the last comma)
        on("+CMQTTRXTOPIC:", rx, body_len=parse_code)
        on("+CMQTTRXPAYLOAD:", rx, body_len=parse_code, secret=True)
        on("+CMQTTRXEND:", rx)
        if at.meaning is None:  # the engine's default: 'error <code>'
            at.meaning = _at_meaning

    def on_message(self, cb):
        self._msg_cb = cb

    def on_state(self, cb):
        self._state_cb = cb

    def __getattr__(self, name):
        # the connect path and the setters (modem/cmqtt_rare.py), the service's stop/reset/REL
        # (modem/cmqtt_svc.py), the rare operations (modem/cmqtt_ops.py): imported when one is called, not when it is looked up (so that
        # `(mq.release, mq.stop)` holds no copy of the module)
        if name in ("start", "acquire", "connect", "subscribe", "rx_in_flight"):
            mod = "modem.cmqtt_rare"
        elif name in ("stop", "release", "reset_service"):
            mod = "modem.cmqtt_svc"
        elif name in ("subscribe_many", "unsubscribe", "set_will", "disconnect", "query_connected"):
            mod = "modem.cmqtt_ops"
        else:
            raise AttributeError(name)
        return lambda *a, **k: lookup(mod, "call", self, name, a, k)

    # ------------------------------------------------------------------ session state (URCs)
    def _set_down(self, why):
        was = self._connected
        self._connected = False
        self.last_down = why
        if was and self._state_cb:
            self._state_cb(False, why)

    def _urc_down(self, line, body=None):
        # +CMQTTCONNLOST: <idx>,<cause> / +CMQTTNONET / +CMQTTPING: <idx>,<err>: the session is down
        if line.startswith(UNSOLICITED[6]):  # +CMQTTNONET
            self.nonet = True
        elif line[line.find(":") + 1 :].split(",")[0].strip() != str(self.idx):
            return  # another client's
        try:
            why = lookup(TEXTS, "down_reason", self, line)
        except Exception:  # noqa: BLE001 - no memory for the words: the session is down all the same
            why = line
        self._set_down(why)
        # A PUB/SUB/UNSUB/DISC result this client still waits for ends here: no PUBACK comes on a closed
        # session (the module reports the op's failure before the URC, as in the seed thread, or never, as the
        # simulator). Its caller gets error 11 now, not after the result's timeout (up to 190 s for a PUB).
        s = " %d," % self.idx
        for w in self.at._waiters:
            p = w.prefix
            if w.owner is not None and w.line is None and w.error is None and p[:6] == "+CMQTT" and p.endswith(s):
                w.error = CmqttError(p[1 : p.find(":")], 11, why)
                w.ev.set()

    def connected(self):
        return self._connected

    # ------------------------------------------------------------------ incoming messages
    # +CMQTTRXSTART: <idx>,<topic_len>,<payload_len>, +CMQTTRXTOPIC / +CMQTTRXPAYLOAD chunks read by byte
    # count, +CMQTTRXEND: put together by modem/cmqtt_rx.py, imported for each line (a message is rare). The
    # message in flight: _rx_buf, _rx_pos, _rx_len, _rx_drop (that module's header); the RX gate: _rx_idle.
    def _rx_reset(self, drop=None):
        self._rx_buf = [None, None]
        self._rx_pos = [0, 0]
        self._rx_drop = drop

    def _urc_rx(self, line, body=None):
        try:
            m = lookup("modem.cmqtt_rx", "urc", self, line, body)
        except Exception:  # noqa: BLE001 - no memory to handle the line (or a defect): the message is dropped
            m = None
            self._rx_reset((4,))  # ('out of memory')
            if ord(line[8]) == _E:  # its end: counted, and the gate opens
                self._rx_idle.set()
                self.stats["rx_dropped"] += 1
            else:
                self._rx_idle.clear()
        if m and self._msg_cb:
            self._msg_cb(*m)  # (topic: str, payload: bytes), with modem/cmqtt_rx.py gone again

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
                # a burst that never ended (lost bytes): forget it (dropped), the next command re-syncs
                self._rx_reset()
                self._rx_idle.set()
                self.stats["rx_dropped"] += 1

    async def _cmd(self, op, cmd, data=None, result=None, result_timeout_ms=None, busy_retries=3):
        """Send one CMQTT command (caller holds the lock). Returns the <err> of the deferred
        result (0) or None for commands without one; raises CmqttError (an ATError REBOOTED as is).
        op: the command's name in errors ('CMQTTPUB'); None: taken from cmd."""
        if op is None:
            op = response_prefix(cmd)[1:-1]  # pyright: ignore[reportOptionalSubscript] - 'AT+CMQTTREL=0' -> 'CMQTTREL'
        attempt = 0
        while True:
            await self._gate()
            try:
                # a final result before the '>' prompt (noise forming 'OK') raises an at.engine.ATError NO_PROMPT:
                # the data was never written, so it must not pass as a topic/payload (error 1)
                r = await self.at.cmd(cmd, self.cmd_timeout_ms, data, result, (result_timeout_ms or 120000) if result else None)
                if result is not None:
                    code = parse_code(r.result)
                else:
                    code = None
                    prefix = "+%s: " % op
                    for ln in r.lines:
                        if ln.startswith(prefix):
                            code = parse_code(ln[len(prefix) :])
                if not code:
                    return code
                err = CmqttError(op, code)
            except ATError as e:
                if e.kind == ERROR and isinstance(e.code, int):
                    err = CmqttError(op, e.code)  # an ERROR with its <err>: what at_error gives, without loading it
                else:
                    err = lookup(EVENTS, "at_error", self, op, result, e)  # the CmqttError it means (a REBOOTED one raised)
            if err.code == 11:
                self._set_down("error 11 (no connection) on %s" % op)
            if err.code == 14 and attempt < busy_retries:
                attempt += 1
                self.stats["busy_retries"] += 1
                await self.clock.sleep_ms(100 * attempt)
                continue
            raise err

    def _check_up(self, op):
        if not self._connected:  # the error 11: modem/code_events.py
            raise lookup(EVENTS, "not_up", self, op)

    # ------------------------------------------------------------------ publish (the hot path)
    async def publish(self, topic, payload, qos=1, retain=False, timeout_s=60):
        """TOPIC + PAYLOAD + PUB; returns after `+CMQTTPUB: <idx>,0` (for QoS 1/2 the modem got
        PUBACK/PUBCOMP). Topic and payload are cleared by the modem after each PUB, so both are
        sent every time."""
        t = check_topic(topic)
        p = check_payload(payload, utf8=self.check_utf8)
        if not 0 <= qos <= 2:
            raise CmqttArgError("qos must be 0, 1 or 2")
        timeout_s = max(PUB_TIMEOUT_MIN, min(PUB_TIMEOUT_MAX, timeout_s))
        i = self.idx
        async with self._lock:
            self._check_up("CMQTTPUB")
            await self._cmd("CMQTTTOPIC", "AT+CMQTTTOPIC=%d,%d" % (i, len(t)), t)
            if p:
                await self._cmd("CMQTTPAYLOAD", "AT+CMQTTPAYLOAD=%d,%d" % (i, len(p)), p)
            await self._cmd("CMQTTPUB", "AT+CMQTTPUB=%d,%d,%d,%d" % (i, qos, timeout_s, 1 if retain else 0),
                            None, "+CMQTTPUB: %d," % i, (timeout_s + 10) * 1000)
