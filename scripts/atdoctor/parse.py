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
+CMQTTRXPAYLOAD: <idx>,<n> chunk is the next n bytes received (atdoctor/bodies.py).
"""

import re

from atdoctor.bodies import HEADER_B, declared_length, extract_bodies, restore_bodies

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
        return (restore_bodies(events, bodies) if bodies else events), fmt
    return parse_plain(_clean(raw)), fmt




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
