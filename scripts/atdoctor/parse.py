"""Turn a modem transcript into an ordered list of events.

Two input shapes are understood:

* the "=== SENT@<ms> ===" / "=== RECV@<ms> ===" block log (the seed thread's debug output and our
  firmware's ATLog), interleaved with application prints.  The seed logs are messy: a RECV block may end
  mid-line (``+GCAP: ==================``), a line that ended in a bare CR is overwritten by the block
  terminator (``==================ntcert.pem",1222``), app prints are glued to block headers
  (``Init MQTT stack...=== SENT@10328 ===``) and echo lines sit inside RECV blocks;
* a plain terminal capture: lines starting with ``AT`` are commands, the rest are replies or notes, with
  no timestamps.

An event is a small dict: ``kind`` (``cmd`` | ``data`` | ``rx`` | ``app``), ``t`` (ms or None), ``text``,
``line`` (1-based line number in the input where it starts) and optional flags:
``hidden`` (the head of the line was overwritten by the block terminator; ``text`` is what is left),
``plain`` (from a plain capture: the builder still has to decide whether it is modem output or a note),
``raw`` (bytes: the exact body of a declared-length data entry or incoming message chunk),
``body`` (an rx event that is the body of a +CMQTTRXTOPIC/+CMQTTRXPAYLOAD chunk),
``glue`` (app prints: ``prev``/``next``/``both`` - which block the print sits against without a blank line;
``None`` means prose around the log, such as a forum post, which is not the application's output).

Byte-exact logs (our firmware's ATLog and other writers that keep the CRs) are read exactly: after a command
that declares a length (AT+CMQTTPAYLOAD=0,20, AT+CCERTDOWN="f",1222...) the next SENT block's first N bytes
are its data, whatever they contain (line breaks, "=== SENT@ ===" text), and an incoming
+CMQTTRXPAYLOAD: <idx>,<n> chunk is the next n bytes received.
"""

import re

HEADER_RE = re.compile(r"=== *(SENT|RECV) *@ *(\d+) *===")
TERM_RE = re.compile(r"={10,}")
TERM = "=================="  # the seed's terminator (18 '=')
CTRL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
HIDE = "\x01"  # internal marker: the rest of this line survived an overwrite


def detect_format(text):
    return "log" if HEADER_RE.search(text) else "plain"


def _clean(text):
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("utf-8", "replace")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return CTRL_RE.sub("", text)


def parse_events(text, fmt="auto"):
    raw = bytes(text) if isinstance(text, (bytes, bytearray)) else text.encode("utf-8", "replace")
    # Our firmware's ATLog writes the raw bytes (CRs included) and always adds "\n" before the terminator;
    # the seed's logger had CRs stripped and wrote the terminator right after the data.
    writer_newline = b"\r" in raw
    if fmt == "auto":
        fmt = "log" if HEADER_B.search(raw) else "plain"
    if fmt == "log":
        bodies = []
        if writer_newline:
            raw, bodies = extract_bodies(raw)
        events = parse_log(_clean(raw), writer_newline)
        return (_restore_bodies(events, bodies) if bodies else events), fmt
    return parse_plain(_clean(raw)), fmt


# ---------------------------------------------------------------- declared-length bodies (byte-exact logs)

HEADER_B = re.compile(rb"=== *(SENT|RECV) *@ *(\d+) *===")
WTERM = b"\n" + TERM.encode()  # the writer's newline, then the terminator
RX_CHUNK_B = re.compile(rb"^\+CMQTTRX(?:TOPIC|PAYLOAD): *\d+ *, *(\d+) *$")
FINAL_B = re.compile(rb"^(OK|ERROR|\+CME ERROR:.*|\+CMS ERROR:.*)$")
TOKEN_RE = re.compile("\u27e6body:(\\d+)\u27e7")
_LEN_ARG = {"+CMQTTTOPIC": 2, "+CMQTTPAYLOAD": 2, "+CMQTTWILLTOPIC": 2, "+CMQTTUNSUBTOPIC": 2, "+CMQTTWILLMSG": 3,
            "+CMQTTSUBTOPIC": 3, "+CMQTTSUB": 3, "+CMQTTUNSUB": 3, "+CCERTDOWN": 2, "+CIPSEND": 2}
_CMD_LEN_RE = re.compile(r"^AT(\+[A-Z]+)=(.*)$", re.I)


def declared_length(cmd):
    """Bytes a data-entry command announces (AT+CMQTTPAYLOAD=0,20 -> 20), or None when it takes no data.
    AT+CMQTTSUB/UNSUB prompt only in their <idx>,<len>,<qos|dup> form."""
    m = _CMD_LEN_RE.match(cmd.strip())
    if not m:
        return None
    name = m.group(1).upper()
    need = _LEN_ARG.get(name)
    if need is None:
        return None
    args = m.group(2).split(",") if name != "+CCERTDOWN" else m.group(2).rsplit(",", 1)
    if len(args) < need and name not in ("+CCERTDOWN", "+CIPSEND"):
        return None
    if name in ("+CMQTTSUB", "+CMQTTUNSUB") and len(args) < 3:
        return None
    try:
        n = int(args[1].strip())
    except (IndexError, ValueError):
        return None
    return n if n >= 0 else None


TERM_B = TERM.encode()


def _char_end(raw, p, n):
    """End of n characters from p in UTF-8 text whose characters are all below U+0100 (a writer that decoded
    the bytes as latin-1 and wrote them as UTF-8: one byte of data, one character), or None."""
    i = p
    for _ in range(n):
        b = raw[i:i + 1]
        if not b:
            return None
        if b[0] < 0x80:
            i += 1
        elif b[0] in (0xC2, 0xC3) and i + 1 < len(raw) and 0x80 <= raw[i + 1] < 0xC0:
            i += 2
        else:
            return None
    return i


def _body_end(raw, p, n, latin_first=False):
    """(end, latin) when a body of n bytes from p is followed by the block's terminator: the writer's newline and
    the terminator, or the terminator alone after a body that ends in a newline (a writer that adds its newline
    only when missing). n bytes are tried first, then n latin-1 characters written as UTF-8 (the other way round
    in a log known to be written that way)."""
    tries = [(p + n, False), (_char_end(raw, p, n), True)]
    if latin_first:  # a latin-1-as-UTF-8 log: "\xc2\x80" + the writer's newline is the byte 0x80 and a "\n"
        tries.reverse()
    for end, latin in tries:
        if end is None or (latin and end == p + n):
            continue
        if raw.startswith(WTERM, end) or (end > p and raw[end - 1:end] == b"\n" and raw.startswith(TERM_B, end)):
            return end, latin
    return None


def _all_latin(raw):
    """True when the bytes are UTF-8 text with some non-ASCII characters, all below U+0100."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    high = [c for c in text if ord(c) > 0x7F]
    return bool(high) and all(ord(c) < 0x100 for c in high)


def _extend(raw, i, q, n, latin):
    """The block's end when an announced body of n bytes from i runs past the terminator found at q: if the bytes
    after the body are the block's end or the next chunk/END, the "terminator" was body text."""
    end = (_char_end(raw, i, n) if latin else None) or i + n
    if end <= q:
        return q
    if raw.startswith(WTERM, end):
        ext = end
    elif raw.startswith((b"\r\n+CMQTTRX", b"\r\n\r\n+CMQTTRX"), end):
        q2 = raw.find(WTERM, end)
        ext = q2 if q2 >= 0 else len(raw)
    else:
        return q
    if HEADER_B.search(raw, q, end) and raw.startswith(WTERM, q):
        # the longer reading swallows a block header: when the body also reads as cut at q and continued in the
        # next RECV block, that is what happened (a forged header would have to forge that continuation too)
        rest = n - len(_latin(raw[i:q]) if latin else raw[i:q])
        if rest > 0 and _rest_fits(raw, q + len(WTERM), rest, latin):
            return q
    return ext


def _rest_fits(raw, after, n, latin):
    """True when the next RECV block (from `after`, past this one's terminator) starts with n more body bytes
    followed by the next chunk/END or that block's end: the reading that makes the announced length come out."""
    m = HEADER_B.match(raw, raw.find(b"=", after)) if raw.find(b"=", after) >= 0 else None
    if not m or m.group(1) != b"RECV":
        return False
    c = m.end() + (1 if raw[m.end():m.end() + 1] == b"\n" else 0)
    end = (_char_end(raw, c, n) if latin else None) or c + n
    return raw.startswith((b"\r\n+CMQTTRX", b"\r\n\r\n+CMQTTRX", WTERM, TERM_B), end)


def _latin(b):
    try:
        return b.decode("utf-8").encode("latin-1")
    except (UnicodeDecodeError, UnicodeEncodeError):
        return b


def _token(k):
    return ("\u27e6body:%d\u27e7" % k).encode()


def extract_bodies(raw):
    """Replace every declared-length body in a byte-exact log by a token; return (bytes, [(dir, bytes)]).

    The body is taken by its length first: when exactly N bytes after the block header are followed by the
    writer's terminator, those N bytes are the body even if they contain a terminator or block headers of
    their own (a payload cannot forge blocks). Otherwise the block ends at its terminator and holds a chunk."""
    out = bytearray()
    bodies = []
    pos = 0
    # two writer styles: ours adds "\n" before every terminator; another (a SIM7600 peer) adds it only when the
    # bytes do not end in "\n", and may write the bytes as latin-1 characters in a UTF-8 file
    if_missing = raw.count(b"\r\n" + TERM_B) > 2 * raw.count(b"\r\n\n" + TERM_B)
    latin_log = if_missing and _all_latin(raw)
    chunk_of = None  # index of the last body chunk of the data entry in progress
    sent_due = 0  # data bytes still owed to the last data-entry command
    rx_due = 0  # bytes of an incoming message chunk still to come
    rx_line = b""
    while True:
        m = HEADER_B.search(raw, pos)
        if not m:
            out += raw[pos:]
            break
        p = m.end()
        if raw[p:p + 1] == b"\n":
            p += 1
        out += raw[pos:p]
        d = m.group(1)
        q = raw.find(WTERM, p)
        if q < 0:
            q = len(raw)
        if d == b"SENT":
            latin = latin_log
            found = _body_end(raw, p, sent_due, latin_log) if sent_due > 0 else None
            if not found and chunk_of is not None and sent_due > 1 and if_missing:
                found = _body_end(raw, p, sent_due - 1, latin_log)
                if found:  # the previous chunk ended in its own "\n": the writer added none
                    bodies[chunk_of] = ("SENT", bodies[chunk_of][1] + b"\n")
                    sent_due -= 1
            if found:
                q, latin = found  # the whole body, by its length
            content = raw[p:q]
            # data of exactly the declared length is data, even "AT...\r"; a block that is not is a command
            # when it looks like one (the host gave up the data entry)
            if sent_due > 0 and (found or not (content.startswith(b"AT") and content.endswith(b"\r"))):
                if latin:
                    content = _latin(content)
                bodies.append(("SENT", content))
                out += _token(len(bodies) - 1)
                sent_due = max(0, sent_due - len(content))
                chunk_of = len(bodies) - 1 if sent_due else None
            else:
                chunk_of = None
                n = declared_length(content.decode("latin-1").strip())
                sent_due = n or 0
                out += content
        else:
            i = p
            if rx_due > 0:  # a body continued from the last read, which may begin like a terminator
                q = _extend(raw, i, q, rx_due, latin_log) if q == p else q
            while i < q:
                if rx_due > 0:
                    q = _extend(raw, i, q, rx_due, latin_log)
                    end = (_char_end(raw, i, rx_due) if latin_log else None) or i + rx_due
                    piece = raw[i:min(end, q)]
                    chunk = _latin(piece) if latin_log else piece
                    bodies.append(("RECV", chunk))
                    out += b"\n" + _token(len(bodies) - 1) + b"\n"
                    rx_due -= len(chunk)
                    i += len(piece)
                    continue
                nl = raw.find(b"\n", i, q)
                piece = raw[i:q] if nl < 0 else raw[i:nl + 1]
                out += piece
                i += len(piece)
                rx_line += piece
                # a line that ends in CR where the block ends is complete (its LF is in the writer's newline
                # or the next read); it must not complete late and cancel the next command's data
                if nl >= 0 or (i >= q and rx_line.endswith(b"\r")):
                    line = rx_line.strip()
                    rx_line = b""
                    mm = RX_CHUNK_B.match(line)
                    if mm:
                        rx_due = int(mm.group(1))
                        if nl < 0 and raw.startswith(WTERM, q):
                            # the URC's CR ended the block and a terminator follows: that "\n==..." may be the
                            # URC's LF and a body that reads like a terminator; the announced length decides
                            at = q + 1
                            end = (_char_end(raw, at, rx_due) if latin_log else None) or at + rx_due
                            if raw.startswith(WTERM, end) or raw.startswith((b"\r\n+CMQTTRX",
                                                                              b"\r\n\r\n+CMQTTRX"), end):
                                out += b"\n"
                                i = at
                                q2 = end if raw.startswith(WTERM, end) else raw.find(WTERM, end)
                                q = q2 if q2 >= 0 else len(raw)
                        elif i >= q:  # the body starts right where a terminator seems to be
                            q = _extend(raw, i, q, rx_due, latin_log)
                    elif sent_due and FINAL_B.match(line):
                        sent_due = 0  # refused before the prompt: no data follows
            if rx_due > 0 and if_missing and i >= q and raw.startswith(WTERM, q):
                # this writer adds its newline only when the bytes lack one: the "\n" before the terminator is
                # the body's own when the rest of the body does not fit the next block otherwise
                nxt = q + len(WTERM)
                if not _rest_fits(raw, nxt, rx_due, latin_log) and (
                        rx_due == 1 or _rest_fits(raw, nxt, rx_due - 1, latin_log)):
                    bodies.append(("RECV", b"\n"))
                    out += b"\n" + _token(len(bodies) - 1) + b"\n"
                    rx_due -= 1
                    q += 1
        pos = q
    return bytes(out), bodies


def _restore_bodies(events, bodies):
    out = []
    for ev in events:
        m = TOKEN_RE.search(ev.get("text", ""))
        if not m or ev["kind"] not in ("data", "rx"):
            out.append(ev)
            continue
        k = int(m.group(1))
        b = bodies[k][1]
        ev = dict(ev, kind="data" if bodies[k][0] == "SENT" else "rx", text=b.decode("utf-8", "replace"), raw=b)
        ev.pop("hidden", None)
        if bodies[k][0] == "RECV":
            ev["body"] = True
        out.append(ev)
    return out


# ---------------------------------------------------------------- plain terminal captures

CMD_RE = re.compile(r"^AT([+&#$%*^][A-Z]|[A-Z]|$)", re.I)
TYPED_REPLY_RE = re.compile(r"^AT(\+[A-Z0-9]+:\s?.*)$", re.I)  # "AT+CMQTTCONNECT: 0,0": a reply typed with AT
GLUED_FINAL_RE = re.compile(r"^(OK|ERROR)(\+.*)$")


PLAIN_FINAL_RE = re.compile(r"^(OK|ERROR|\+CME ERROR:.*|\+CMS ERROR:.*|\+[A-Z]+: \d+,\d+)$")


def parse_plain(text):
    events = []
    due = None  # bytes still owed to the data entry of the last command (typed/pasted after its '>')
    for n, raw in enumerate(text.split("\n"), 1):
        line = raw.strip()
        if not line:
            continue
        if due is not None and due > 0 and not line.startswith(">") and not PLAIN_FINAL_RE.match(line):
            events.append({"kind": "data", "t": None, "text": line, "line": n})  # data after '>', not prose
            due -= len(line.encode()) + 1
            continue
        if due is not None and line.startswith(">"):
            due -= len(line[1:].encode())
            events.append({"kind": "rx", "t": None, "text": line, "line": n, "plain": True})
            continue
        due = None
        m = TYPED_REPLY_RE.match(line)
        if m:
            events.append({"kind": "rx", "t": None, "text": m.group(1), "line": n, "plain": True,
                           "typed_as_command": True})
            continue
        if CMD_RE.match(line) and line.upper() != "AT" and events and events[-1]["kind"] == "cmd" \
                and events[-1]["text"] == line:
            # local echo and the module's echo both captured: the second copy is the echo
            events.append({"kind": "rx", "t": None, "text": line, "line": n, "plain": True, "echo": True})
            continue
        if CMD_RE.match(line):
            events.append({"kind": "cmd", "t": None, "text": line, "line": n})
            due = declared_length(line)
            continue
        m = GLUED_FINAL_RE.match(line)
        if m:
            events.append({"kind": "rx", "t": None, "text": m.group(1), "line": n, "plain": True})
            events.append({"kind": "rx", "t": None, "text": m.group(2), "line": n, "plain": True, "cut": True})
            continue
        events.append({"kind": "rx", "t": None, "text": line, "line": n, "plain": True})
    return events


# ---------------------------------------------------------------- the === SENT/RECV === log

class _Block:
    __slots__ = ("dir", "t", "line", "buf", "closed")

    def __init__(self, d, t, line):
        self.dir = d
        self.t = t
        self.line = line
        self.buf = []  # raw text pieces
        self.closed = False


def _blocks(text):
    """Split the log into ('app', text, line) and ('block', _Block) items, in order."""
    items = []
    cur = None
    for n, line in enumerate(text.split("\n"), 1):
        rest = line
        while True:
            if cur is None:
                m = HEADER_RE.search(rest)
                if not m:
                    if rest.strip():
                        items.append(("app", rest.strip(), n))
                    elif rest is line:
                        items.append(("blank", n))
                    break
                before = rest[: m.start()]
                if before.strip():
                    items.append(("app", before.strip(), n))
                cur = _Block(m.group(1), int(m.group(2)), n)
                items.append(("block", cur))
                rest = rest[m.end():]
                if not rest.strip():
                    break
                continue
            # inside a block
            m = HEADER_RE.search(rest)
            if m:  # a new header before the terminator: the previous block ended unannounced
                if rest[: m.start()]:
                    cur.buf.append(rest[: m.start()])
                cur.closed = True
                cur = None
                continue
            t = TERM_RE.search(rest)
            if t is None:
                cur.buf.append(rest + "\n")
                break
            head, tail = rest[: t.start()], rest[t.end():]
            if t.start() == 0 and tail:
                # "==================ntcert.pem",1222": the modem's line ended with a bare CR and the
                # terminator overwrote its first characters; what is left is the tail.
                cur.buf.append(HIDE + tail + "\n")
            elif t.start() == 0 and not cur.buf:
                cur.buf.append(HIDE + "\n")  # an empty block: everything it held was overwritten
            elif head:
                cur.buf.append(head)  # "+GCAP: ==================": the block ended mid-line
            cur.closed = True
            cur = None
            break
    return items


def _glue(items):
    """For each app item: 'prev'/'next'/'both' when no blank line separates it from the block before/after it,
    None when blank lines part it from both (prose around the log: a forum post, a README)."""
    n = len(items)
    prev = [False] * n
    nxt = [False] * n
    on = False
    for k in range(n):
        kind = items[k][0]
        if kind == "block":
            on = True
        elif kind == "blank":
            on = False
        prev[k] = on
    on = False
    for k in range(n - 1, -1, -1):
        kind = items[k][0]
        if kind == "block":
            on = True
        elif kind == "blank":
            on = False
        nxt[k] = on
    return [("both" if prev[k] and nxt[k] else "prev" if prev[k] else "next" if nxt[k] else None)
            for k in range(n)]


def parse_log(text, writer_newline=False):
    events = []
    rx_pending = ""  # received text of an unfinished line, carried across RECV blocks
    rx_t = None
    rx_line = None

    held_apps = []  # app prints that came while a received line was unfinished: they follow it

    def flush_rx(final):
        nonlocal rx_pending
        parts = rx_pending.split("\n")
        rx_pending = "" if final else parts.pop()
        if final and parts and parts[-1] == "":
            parts.pop()
        for p in parts:
            hidden = p.startswith(HIDE)
            p = p.replace(HIDE, "")
            if not p.strip() and not hidden:
                continue
            ev = {"kind": "rx", "t": rx_t, "text": p.strip(), "line": rx_line}
            if hidden:
                ev["hidden"] = True
            events.append(ev)
        if not rx_pending:
            events.extend(held_apps)
            del held_apps[:]

    items = _blocks(text)
    glue = _glue(items)
    for k, item in enumerate(items):
        if item[0] == "blank":
            continue
        if item[0] == "app":
            ev = {"kind": "app", "t": None, "text": item[1], "line": item[2], "glue": glue[k]}
            (held_apps if rx_pending else events).append(ev)
            continue
        b = item[1]
        raw = "".join(b.buf)
        if b.dir == "RECV" and writer_newline and raw.endswith("\n"):
            raw = raw[:-1]  # the writer's newline: what is left shows whether the chunk ended mid-line
        if b.dir == "RECV":
            rx_t = b.t
            rx_line = b.line
            rx_pending += raw
            flush_rx(False)
            continue
        flush_rx(True)
        if raw.endswith("\n"):
            raw = raw[:-1]  # the writer's own newline after the sent text
        raw = raw.replace(HIDE, "")
        body = raw.strip("\n")
        if not body.strip():
            if raw:
                events.append({"kind": "data", "t": b.t, "text": raw, "line": b.line})
            continue
        if "\n" not in body and CMD_RE.match(body.strip()):
            events.append({"kind": "cmd", "t": b.t, "text": body.strip(), "line": b.line})
        else:
            events.append({"kind": "data", "t": b.t, "text": raw, "line": b.line})
    flush_rx(True)
    events.extend(held_apps)
    return events
