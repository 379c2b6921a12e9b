# Byte-level framing of a modem's AT stream: lines ending in CR, LF or CRLF; the bare '>'
# data-entry prompt (no line end follows it); raw length-prefixed bodies that follow a line
# (e.g. +CMQTTRXPAYLOAD: 0,<n> then n bytes that may contain CR/LF); and skipping the modem's echo
# of data we just wrote. Pure and synchronous: the AT engine's reader task feeds it bytes.
#
# The line buffer is preallocated; a body's buffer is allocated when its line announces it, of its
# exact size, and handed to its callback (the one object a body costs; no buffer is held between
# bodies: they are rare, incoming MQTT messages). Lines are handed on as str; bytes that are not
# valid UTF-8 (line noise) become '?' so a garbage burst never raises.

from core.compat import const

_LINE_MAX = const(560)  # longest line we keep whole (CPSI/CGPSINFO/CSSLCFG read are < 200)
_BODY_MAX = const(1536)  # the longest body accepted: CMQTT RX chunks are <= 1500 bytes
_CR = const(13)
_LF = const(10)
_GT = const(62)
_SP = const(32)


def to_text(buf):
    """bytes-like -> str; non-UTF-8 bytes become '?' (MicroPython's decode has no errors=)."""
    try:
        return str(buf, "utf-8")
    except (UnicodeError, ValueError):
        b = bytearray(buf)
        for i in range(len(b)):
            if b[i] > 126 or (b[i] < 32 and b[i] != 9):
                b[i] = 63
        return str(b, "utf-8")


class Framer:
    """Feeds bytes, calls `on_line(str)` per non-empty line, `on_prompt()` for a '>' at the start
    of a line while `want_prompt` is set, and a body callback after `expect_body(n, cb)`.

    Counters: `lines`, `overflows` (over-long lines, truncated), `noise` (bytes dropped)."""

    body_max = _BODY_MAX  # the longest body expect_body accepts

    def __init__(self, on_line, on_prompt=None):
        self.on_line = on_line
        self.on_prompt = on_prompt
        self.want_prompt = False
        self.line = memoryview(bytearray(_LINE_MAX))  # the line buffer
        self.end = 0  # bytes in it so far
        self._over = False
        # the raw body being read: its buffer (None between bodies, else of the announced size),
        # the bytes of it still to come (0: none, so `if framer.body_len` is "in a body"), its
        # callback; the AT engine gives it up after a timeout (at/recover.py)
        self.body = None
        self.body_len = 0
        self.cb = None
        self.secret = False  # the body's bytes are masked in the log
        self.masked = []  # [start, end, ...] of masked body bytes in the current feed (the log's)
        # a byte dropped if it comes next: the LF of a line that a CR ended, the one space the
        # module may send after '>' (0: none)
        self.skip = 0
        # the data whose echo is skipped (the AT engine sets it before writing data: the module may
        # echo it with ATE1), byte for byte while it matches (the first mismatch ends the
        # skipping); how much of it matched (0 whenever echo is None)
        self.echo = None
        self._echo_pos = 0
        self.lines = 0
        self.overflows = 0

    # -- requests from the engine -------------------------------------------------------------
    def expect_body(self, n, cb, secret=False):
        """Called from inside on_line: the next n raw bytes (after the line's own CRLF) are a
        body for cb(bytearray of n bytes). A body larger than body_max is refused with ValueError
        (a MemoryError for its buffer is raised as is: either way no body is expected). secret: the
        positions of its bytes in each feed() are appended to `masked` (for a redacted log)."""
        if n <= 0:
            cb(b"")
            return
        if n > _BODY_MAX:
            raise ValueError("body of %d bytes exceeds the %d-byte limit" % (n, _BODY_MAX))
        self.body = bytearray(n)
        self.body_len = n
        self.cb = cb
        self.secret = secret

    def reset(self):
        self.end = 0
        self._over = False
        self.body = self.cb = None
        self.body_len = 0
        self.skip = 0
        self.echo = None
        self._echo_pos = 0
        self.want_prompt = False

    # -- the byte path -------------------------------------------------------------------------
    def feed(self, buf, n):
        """Process buf[0:n] (buf: bytearray or bytes)."""
        mv = None  # one memoryview of buf per call, made when bytes are copied out of it
        i = 0
        while i < n:
            c = buf[i]
            if self.skip:
                k = self.skip
                self.skip = 0
                if c == k:
                    i += 1
                    continue
            if self.body_len:  # raw body bytes, as many as it still wants
                if mv is None:
                    mv = memoryview(buf)
                body = self.body
                k = self.body_len
                if k > n - i:
                    k = n - i
                p = len(body) - self.body_len  # pyright: ignore[reportArgumentType] - set while body_len is
                body[p : p + k] = mv[i : i + k]  # pyright: ignore[reportOptionalSubscript]
                if self.secret:
                    self.masked.append(i)
                    self.masked.append(i + k)
                i += k
                self.body_len -= k
                if not self.body_len:
                    cb = self.cb
                    self.body = self.cb = None
                    # the module ends the body with CRLF; let it be an empty line
                    if cb is not None:  # always set by expect_body while a body is wanted
                        cb(body)
                continue
            if self.echo is not None and self.end == 0:
                e = self.echo
                if self._echo_pos < len(e) and c == e[self._echo_pos]:
                    self._echo_pos += 1
                    if self._echo_pos == len(e):
                        self.echo = None
                        self._echo_pos = 0
                    i += 1
                    continue
                self.echo = None
                self._echo_pos = 0
            if c == _GT and self.end == 0 and self.want_prompt:
                self.want_prompt = False
                self.skip = _SP
                i += 1
                if self.on_prompt:
                    self.on_prompt()
                continue
            # copy up to the next line end (CR or LF, whichever comes first)
            j = buf.find(b"\r", i, n)
            k = buf.find(b"\n", i, n)
            if j < 0 or 0 <= k < j:
                j = k
            k = (n if j < 0 else j) - i  # bytes of this line in buf
            room = len(self.line) - self.end
            if k > room:
                k = room
                if not self._over:
                    self._over = True
                    self.overflows += 1
            if k > 0:
                if mv is None:
                    mv = memoryview(buf)
                self.line[self.end : self.end + k] = mv[i : i + k]
                self.end += k
            if j < 0:
                return
            self.skip = _LF if buf[j] == _CR else 0
            i = j + 1
            # the line is complete: hand it on stripped, unless it is blank
            k = self.end
            self.end = 0
            self._over = False
            if k:
                t = to_text(self.line[:k]).strip()
                if t:
                    self.lines += 1
                    self.on_line(t)
