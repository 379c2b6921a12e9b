# Byte-level framing of a modem's AT stream: lines ending in CR, LF or CRLF; the bare '>'
# data-entry prompt (no line end follows it); raw length-prefixed bodies that follow a line
# (e.g. +CMQTTRXPAYLOAD: 0,<n> then n bytes that may contain CR/LF); and skipping the modem's echo
# of data we just wrote. Pure and synchronous: the AT engine's reader task feeds it bytes.
#
# Everything is preallocated: one line buffer, one body buffer. Lines are handed on as str; bytes
# that are not valid UTF-8 (line noise) become '?' so a garbage burst never raises.

from core.compat import const

_LINE_MAX = const(560)  # longest line we keep whole (CPSI/CGPSINFO/CSSLCFG read are < 200)
_BODY_MAX = const(1536)  # CMQTT RX chunks are <= 1500 bytes
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

    def __init__(self, on_line, on_prompt=None, line_max=_LINE_MAX, body_max=_BODY_MAX):
        self.on_line = on_line
        self.on_prompt = on_prompt
        self.want_prompt = False
        self.line = memoryview(bytearray(line_max))  # the line buffer
        self.end = 0  # bytes in it so far
        self._over = False
        self.body = memoryview(bytearray(body_max))  # the body buffer
        self._body_len = 0  # bytes wanted
        self._body_pos = 0
        self.cb = None  # the body's callback
        self.secret = False  # the body's bytes are masked in the log
        self.masked = []  # [start, end, ...] of masked body bytes in the current feed (the log's)
        # a byte dropped if it comes next: the LF of a line that a CR ended, the one space the
        # module may send after '>' (0: none)
        self.skip = 0
        self.echo = None  # the data whose echo is skipped
        self._echo_pos = 0
        self.lines = 0
        self.overflows = 0

    # -- requests from the engine -------------------------------------------------------------
    def expect_body(self, n, cb, secret=False):
        """Called from inside on_line: the next n raw bytes (after the line's own CRLF) are a
        body for cb(bytes). A body larger than the buffer is refused with ValueError. secret: the
        positions of its bytes in each feed() are appended to `masked` (for a redacted log)."""
        if n <= 0:
            cb(b"")
            return
        if n > len(self.body):
            raise ValueError("body of %d bytes exceeds the %d-byte buffer" % (n, len(self.body)))
        self._body_len = n
        self._body_pos = 0
        self.cb = cb
        self.secret = secret

    def body_max(self):
        """The longest body expect_body accepts (the body buffer's size)."""
        return len(self.body)

    def in_body(self):
        return self._body_len > 0

    def abort_body(self):
        """Give up on a body that never completed (timeout): returns the partial bytes."""
        got = bytes(self.body[: self._body_pos])
        self._body_len = self._body_pos = 0
        self.cb = None
        return got

    def expect_echo(self, data):
        """The modem may echo the data we are about to write (ATE1): skip it byte for byte while
        it matches; the first mismatch ends the skipping."""
        self.echo = data
        self._echo_pos = 0

    def reset(self):
        self.end = 0
        self._over = False
        self._body_len = self._body_pos = 0
        self.cb = None
        self.skip = 0
        self.echo = None  # the data whose echo is skipped
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
            if self._body_len:  # raw body bytes, as many as it still wants
                if mv is None:
                    mv = memoryview(buf)
                p = self._body_pos
                k = self._body_len - p
                if k > n - i:
                    k = n - i
                self.body[p : p + k] = mv[i : i + k]
                if self.secret:
                    self.masked.append(i)
                    self.masked.append(i + k)
                i += k
                self._body_pos = p = p + k
                if p == self._body_len:
                    cb = self.cb
                    body = bytes(self.body[:p])
                    self._body_len = self._body_pos = 0
                    self.cb = None
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
                    i += 1
                    continue
                self.echo = None
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
