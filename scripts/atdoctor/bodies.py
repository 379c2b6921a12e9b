"""Declared-length bodies in byte-exact logs: the data after a '>' prompt and the chunks of incoming messages.

After a command that declares a length (AT+CMQTTPAYLOAD=0,20, AT+CCERTDOWN="f",1222, AT+CMQTTSUB=0,9,1...) the
next N bytes sent are its data, whatever they hold (line breaks, NULs, a terminator, "=== SENT@ ===" text); after
+CMQTTRXTOPIC/+CMQTTRXPAYLOAD: <idx>,<n> the next n bytes received are the chunk.  extract_bodies replaces each
body by a token before the line-based parse and keeps its exact bytes; restore_bodies puts them back as events.

Two writers are understood: ours (at.engine.ATLog: the text, then "\n" and the terminator, always) and a SIM7600
peer's (the bytes as latin-1 characters in a UTF-8 file, its "\n" only when the bytes lack one).
"""

import re

TERM = "=================="  # the terminator (18 '=')


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


def _all_latin(raw):
    """True when the bytes are UTF-8 text with some non-ASCII characters, all below U+0100."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    high = [c for c in text if ord(c) > 0x7F]
    return bool(high) and all(ord(c) < 0x100 for c in high)


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


def restore_bodies(events, bodies):
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
