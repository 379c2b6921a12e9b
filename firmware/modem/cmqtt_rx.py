# The incoming messages of a modem/cmqtt.py client: +CMQTTRXSTART, the +CMQTTRXTOPIC / +CMQTTRXPAYLOAD
# chunks (read by byte count: the engine's body_len) and +CMQTTRXEND put together into (topic, payload).
# Imported for each of those URC lines (Cmqtt._urc_rx through core.errors.lookup) and dropped after it:
# a message is rare (a command now and then) and its ~0.7 KB of code is not resident for it. The state
# is the client's (below), so nothing here outlives a line.
#
# The message in flight is two parts, [topic, payload] (index 0, 1): c._rx_buf (bytearrays of the
# announced sizes, allocated once), c._rx_pos (bytes so far), c._rx_len (announced; -1 unknown: assembled
# up to the caps and not checked at RXEND). A message is refused by the length +CMQTTRXSTART announces,
# before any byte is buffered, above codes.RX_TOPIC_CAP / RX_PAYLOAD_CAP. Any error (MemoryError
# included) drops the message and leaves no state (c._rx_reset(drop): drop is why, (n, args...) worded by
# modem/code_events.py's rx_dropped); the RX gate (c._rx_idle) shuts at RXSTART and reopens at RXEND.
from core.compat import const
from core.errors import lookup
from modem.codes import EVENTS, RX_PAYLOAD_CAP, RX_TOPIC_CAP

_S = const(83)  # line[8]: 'S' of +CMQTTRXSTART, 'E' of +CMQTTRXEND, 'P' of +CMQTTRXPAYLOAD, 'T' of +CMQTTRXTOPIC
_E = const(69)
_P = const(80)


def urc(c, line, body):
    """One RX line of client c -> (topic, payload) at the RXEND of a message to deliver, else None."""
    k = ord(line[8])
    if k == _E:
        return end(c)
    if k == _S:
        start(c, line)
    else:
        part(c, 1 if k == _P else 0, body)


def start(c, line):
    # +CMQTTRXSTART: <idx>,<topic_len>,<payload_len>
    c._rx_idle.clear()
    c._rx_reset()
    try:
        parts = line.split(":", 1)[1].split(",")
        tl = int(parts[1])
        pl = int(parts[2])
    except (IndexError, ValueError):
        tl = pl = -1
    c._rx_len = (tl, pl)
    if tl > RX_TOPIC_CAP or pl > RX_PAYLOAD_CAP:
        c._rx_drop = (0, tl, pl)
        return
    try:
        c._rx_buf = [bytearray(tl if tl > 0 else 0), bytearray(pl if pl > 0 else 0)]
    except MemoryError:
        c._rx_reset((1, pl))


def part(c, i, body):
    # +CMQTTRXTOPIC: / +CMQTTRXPAYLOAD: <idx>,<n>, n raw bytes: copied where the part so far ends
    buf = c._rx_buf[i]
    if not body or c._rx_drop is not None or buf is None:
        return
    pos = c._rx_pos[i]
    n = pos + len(body)
    try:
        if c._rx_len[i] >= 0:
            if n > len(buf):
                return c._rx_reset((2,))
            buf[pos:n] = body
        else:
            cap = RX_PAYLOAD_CAP if i else RX_TOPIC_CAP
            if n > cap:
                return c._rx_reset((3, cap))
            buf.extend(body)
    except MemoryError:
        return c._rx_reset((4,))
    c._rx_pos[i] = n


def end(c):
    (t, p), (tpos, ppos), drop = c._rx_buf, c._rx_pos, c._rx_drop
    tl, pl = c._rx_len
    c._rx_reset()
    c._rx_idle.set()
    if drop is None and t is None:
        drop = (5,)
    if drop is None and ((tl >= 0 and tpos != tl) or (pl >= 0 and ppos != pl)):
        drop = (6, tpos, tl, ppos, pl)
    if drop is not None:
        c.stats["rx_dropped"] += 1
        if c.log:
            try:
                lookup(EVENTS, "rx_dropped", c, drop)
            except Exception:  # noqa: BLE001 - no memory for the words: dropped and counted all the same
                c.log.warn("incoming message dropped: %s", drop)
        return None
    c.stats["rx"] += 1
    try:
        topic = str(t, "utf-8")  # pyright: ignore[reportArgumentType] - not None: checked above
    except UnicodeError:
        topic = repr(bytes(t))  # pyright: ignore[reportArgumentType]
    return topic, bytes(p)
