# Incoming messages of the modem's MQTT client: +CMQTTRXSTART: <idx>,<topic_len>,<payload_len>,
# +CMQTTRXTOPIC / +CMQTTRXPAYLOAD chunks read by byte count (CR/LF and <=1500-byte chunking kept),
# +CMQTTRXEND. A message is refused by its announced length, before any byte is buffered, above
# codes.RX_TOPIC_CAP / RX_PAYLOAD_CAP (256 / 2048 bytes); buffers of the announced sizes are
# allocated once; any error (MemoryError included) drops the message and leaves no state: the RX
# gate (`_rx_idle`, which Cmqtt's commands wait on) reopens at its +CMQTTRXEND.
import asyncio

from modem import codes


class CmqttRx:
    """Base of modem.cmqtt.Cmqtt: the RX burst state and its URC handlers. Counters: rx_count,
    rx_errors, stats["rx"], stats["rx_dropped"] (the subclass creates `stats` and `log`)."""

    stats = {}  # replaced by the subclass's own (modem.cmqtt.Cmqtt)
    log = None

    def __init__(self):
        self._rx_idle = asyncio.Event()  # set while no incoming message burst is in flight
        self._rx_idle.set()
        self._rx_topic = None  # buffers of the announced sizes, filled up to _rx_tpos/_rx_ppos
        self._rx_payload = None
        self._rx_tpos = self._rx_ppos = 0
        self._rx_tlen = 0
        self._rx_plen = 0
        self._rx_drop = None  # why the message in flight is being dropped
        self._msg_cb = None
        self.rx_count = 0
        self.rx_errors = 0

    @staticmethod
    def _chunk_len(line):
        # '+CMQTTRXTOPIC: 0,21' -> 21 raw bytes follow the line
        try:
            return int(line.rsplit(",", 1)[1])
        except (IndexError, ValueError):
            return 0

    def _urc_rxstart(self, line, body=None):
        self._rx_idle.clear()
        self._rx_reset()
        try:
            parts = line.split(":", 1)[1].split(",")
            tl = int(parts[1])
            pl = int(parts[2])
        except (IndexError, ValueError):
            tl = pl = -1  # unknown: assembled up to the caps and not checked at RXEND
        self._rx_tlen, self._rx_plen = tl, pl
        if tl > codes.RX_TOPIC_CAP or pl > codes.RX_PAYLOAD_CAP:
            self._rx_drop = "announced topic %d / payload %d bytes, more than this firmware accepts (%d / %d)" % (tl, pl, codes.RX_TOPIC_CAP, codes.RX_PAYLOAD_CAP)
            return
        try:
            self._rx_topic = bytearray(tl if tl > 0 else 0)
            self._rx_payload = bytearray(pl if pl > 0 else 0)
        except MemoryError:
            self._rx_reset("out of memory for a %d-byte message" % pl)

    def _rx_reset(self, drop=None):
        self._rx_topic = self._rx_payload = None
        self._rx_tpos = self._rx_ppos = 0
        self._rx_drop = drop

    def _rx_put(self, buf, pos, known, cap, body):
        # copy a chunk at pos; returns the new position (or None: the message is being dropped)
        end = pos + len(body)
        if known >= 0:
            if end > len(buf):
                self._rx_reset("more bytes than announced")
                return None
            buf[pos:end] = body
        else:
            if end > cap:
                self._rx_reset("over %d bytes (length not announced)" % cap)
                return None
            buf.extend(body)
        return end

    def _urc_rxtopic(self, line, body=None):
        if body and self._rx_drop is None and self._rx_topic is not None:
            try:
                p = self._rx_put(self._rx_topic, self._rx_tpos, self._rx_tlen, codes.RX_TOPIC_CAP, body)
            except MemoryError:
                p = None
                self._rx_reset("out of memory")
            if p is not None:
                self._rx_tpos = p

    def _urc_rxpayload(self, line, body=None):
        if body and self._rx_drop is None and self._rx_payload is not None:
            try:
                p = self._rx_put(self._rx_payload, self._rx_ppos, self._rx_plen, codes.RX_PAYLOAD_CAP, body)
            except MemoryError:
                p = None
                self._rx_reset("out of memory")
            if p is not None:
                self._rx_ppos = p

    def _urc_rxend(self, line, body=None):
        t, p, tpos, ppos, drop = self._rx_topic, self._rx_payload, self._rx_tpos, self._rx_ppos, self._rx_drop
        self._rx_reset()
        self._rx_idle.set()
        if drop is None and t is None:
            drop = "no +CMQTTRXSTART"
        if drop is None and ((self._rx_tlen >= 0 and tpos != self._rx_tlen) or (self._rx_plen >= 0 and ppos != self._rx_plen)):
            drop = "length mismatch: topic %d/%d payload %d/%d" % (tpos, self._rx_tlen, ppos, self._rx_plen)
        if drop is not None:
            self.rx_errors += 1
            self.stats["rx_dropped"] += 1
            if self.log:
                self.log.warn("incoming message dropped: %s", drop)
            return
        self.rx_count += 1
        self.stats["rx"] += 1
        if self._msg_cb:
            try:
                topic = str(t, "utf-8")  # pyright: ignore[reportArgumentType] - not None: checked above
            except UnicodeError:
                topic = repr(bytes(t))  # pyright: ignore[reportArgumentType]
            self._msg_cb(topic, bytes(p))  # pyright: ignore[reportArgumentType]
