# FakeCmqtt: a small *strict* scripted CMQTT peer behind a BufferStream, for the dual-runtime
# tests (mp_cmqtt, mp_cmqtt_rx, mp_cellular_pub). Strict like the seed's modem: a CMQTT command
# sent while an asynchronous result is still owed or an incoming message burst is in flight gets
# `+CMQTTxxx: 0,14` + ERROR, and TOPIC/PAYLOAD/SUB/PUB without a connection get `0,11` + ERROR. So
# the seed's two failures (publish right after CONNECT's OK; SUB while busy) would show here.
from at.engine import ATEngine
from core.compat import sleep_ms
from fakemodem import LinePeer
from modem import cmqtt as C

OK = b"\r\nOK\r\n"


def _err(op, code):
    return b"\r\n+%s: 0,%d\r\n\r\nERROR\r\n" % (op.encode(), code)


class FakeCmqtt(LinePeer):
    """Strict scripted CMQTT modem. `hold` = set of ops whose deferred result the test releases
    with release(op, err); `result_first` sends results before OK (as the seed's START did)."""

    def __init__(self):
        LinePeer.__init__(self)
        self.started = False
        self.acquired = False
        self.connected = False
        self.rx_busy = False
        self.owed = {}  # op -> True while its deferred result is outstanding
        self.hold = set()
        self.result_first = False
        self.busy_hits = 0
        self.nocon_hits = 0
        self.start_code = 0
        self.connect_code = 0
        self.pub_code = 0
        self.old_firmware = False  # ACCQ takes 3 arguments only and CMQTTCFG="checkUTF8" is unknown (ERROR)
        self.other = {}  # exact command -> reply bytes (non-CMQTT commands)
        self.subs = []
        self.pubs = []
        self._topic = None
        self._payload = b""
        self._subtopics = []

    def _deferred(self, op, code):
        line = b"\r\n+%s: 0,%d\r\n" % (op.encode(), code) if op not in ("CMQTTSTART", "CMQTTSTOP") else b"\r\n+%s: %d\r\n" % (op.encode(), code)
        if op in self.hold:
            self.owed[op] = True
            return OK
        return line + OK if self.result_first else OK + line

    def release(self, op, code=0):
        del self.owed[op]
        if op == "CMQTTCONNECT" and code == 0:
            self.connected = True
        self.feed(b"\r\n+%s: 0,%d\r\n" % (op.encode(), code))

    def rx_message(self, topic, payload, chunk=1500, split=False):
        """Bytes of one incoming PUBLISH (payload chunked by `chunk`); with split=True returns
        (head, tail) so a test can hold the burst open."""
        t = topic if isinstance(topic, bytes) else topic.encode()
        out = b"\r\n+CMQTTRXSTART: 0,%d,%d\r\n+CMQTTRXTOPIC: 0,%d\r\n" % (len(t), len(payload), len(t)) + t
        parts = []
        for i in range(0, len(payload), chunk):
            c = payload[i : i + chunk]
            parts.append(b"\r\n+CMQTTRXPAYLOAD: 0,%d\r\n" % len(c) + c)
        end = b"\r\n+CMQTTRXEND: 0\r\n"
        if split:
            return out + b"".join(parts[:1]), b"".join(parts[1:]) + end
        return out + b"".join(parts) + end

    def _command(self, cmd):
        if not cmd.startswith("AT+CMQTT"):
            return self.other.get(cmd, OK)
        op = cmd[3:].split("=")[0].split("?")[0]
        if self.rx_busy or self.owed:
            self.busy_hits += 1
            return _err(op, 14)
        if cmd == "AT+CMQTTSTART":
            if self.started:
                return b"\r\n+CMQTTSTART: 23\r\n\r\nERROR\r\n"
            if self.start_code == 0:
                self.started = True
            return self._deferred(op, self.start_code)
        if cmd == "AT+CMQTTSTOP":
            if not self.started:
                return b"\r\nERROR\r\n"
            self.started = False
            return self._deferred(op, 0)
        if op == "CMQTTACCQ":
            if self.old_firmware and len(cmd.split(",")) > 3:
                return b"\r\nERROR\r\n"
            if self.acquired:
                return _err(op, 19)
            self.acquired = True
            return OK
        if op == "CMQTTREL":
            if not self.acquired:
                return _err(op, 20)
            self.acquired = False
            return OK
        if op == "CMQTTCFG" and self.old_firmware:
            return b"\r\nERROR\r\n"
        if op == "CMQTTCFG" or op == "CMQTTSSLCFG":
            return OK
        if op in ("CMQTTWILLTOPIC", "CMQTTWILLMSG"):
            n = int(cmd.split(",")[1])
            return self._prompt(n, lambda d: OK)
        if cmd.startswith("AT+CMQTTCONNECT="):
            if self.connected:
                return _err(op, 19)
            if self.connect_code == 0 and op not in self.hold:
                self.connected = True
            return self._deferred(op, self.connect_code)
        if cmd == "AT+CMQTTDISC?":
            return b"\r\n+CMQTTDISC: 0,%d\r\n+CMQTTDISC: 1,1\r\n" % (0 if self.connected else 1) + OK
        if op == "CMQTTDISC":
            was = self.connected
            self.connected = False
            return self._deferred(op, 0 if was else 11)
        if op in ("CMQTTTOPIC", "CMQTTPAYLOAD", "CMQTTSUBTOPIC", "CMQTTSUB", "CMQTTPUB", "CMQTTUNSUB"):
            if not self.connected:
                self.nocon_hits += 1
                return _err(op, 11)
            args = cmd.split("=")[1].split(",")
            if op == "CMQTTTOPIC":
                return self._prompt(int(args[1]), self._set_topic)
            if op == "CMQTTPAYLOAD":
                return self._prompt(int(args[1]), self._set_payload)
            if op == "CMQTTSUBTOPIC":
                return self._prompt(int(args[1]), self._add_subtopic)
            if op == "CMQTTSUB" and len(args) >= 3:
                return self._prompt(int(args[1]), self._sub_one)
            if op == "CMQTTSUB":
                self.subs.extend(self._subtopics)
                self._subtopics = []
                return self._deferred(op, 0)
            if op == "CMQTTUNSUB":
                return self._prompt(int(args[1]), lambda d: self._deferred("CMQTTUNSUB", 0))
            if op == "CMQTTPUB":
                if self._topic is None:
                    return _err(op, 18)
                self.pubs.append((self._topic, self._payload, int(args[1])))
                self._topic, self._payload = None, b""
                return self._deferred(op, self.pub_code)
        return b"\r\nERROR\r\n"

    def _set_topic(self, d):
        self._topic = d
        return OK

    def _set_payload(self, d):
        self._payload = d
        return OK

    def _add_subtopic(self, d):
        self._subtopics.append(d)
        return OK

    def _sub_one(self, d):
        self.subs.append(d)
        return self._deferred("CMQTTSUB", 0)


def setup(**kw):
    m = FakeCmqtt()
    at = ATEngine(m.stream, poll_ms=1)
    at.start()
    mq = C.Cmqtt(at, **kw)
    return m, at, mq


async def up(m, mq, tls=False):
    await mq.start()
    await mq.acquire("dev1", tls=tls)
    await mq.connect("broker.local", 1883, ssl_ctx=0 if tls else None)


async def until(cond, ms=3000):
    for _ in range(ms):
        if cond():
            return True
        await sleep_ms(1)
    return False
