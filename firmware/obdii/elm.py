# ELM327-style link to the Freematics ONE+ OBD co-processor (UART2, 115200 8N1), or to
# any ELM327 on a tty. Commands end with "\r"; the reply ends with the ">" prompt.
#
#   link = ElmLink(stream, clock=None)
#   lines = await link.query("ATRV", 500)      # -> ["13.1V"]
#   n = await link.query_raw(b"010C", 1000)     # reply kept in link.buf[:n], lines split by b"\r"
#
# The reply body is cleaned in place: echo, blank lines, "SEARCHING..." and
# "BUS INIT: ...OK" are removed, non-printable bytes dropped. ELM error replies become
# exceptions naming the command and the reply. One query runs at a time (a busy flag
# that waiters poll: asyncio.Lock costs ~0.5 KB of garbage per use under MicroPython).
# tap(cmd, raw) (optional) sees every exchange's raw reply, before cleaning.
from core.compat import hexval
from core.errors import lookup

SHORT_TIMEOUT_MS = 1000  # FreematicsOBD.h OBD_TIMEOUT_SHORT
LONG_TIMEOUT_MS = 10000  # OBD_TIMEOUT_LONG: granted again when "..." (SEARCHING...) arrives
# The ELM327 reply messages and what they mean: obdii/elmtext.py, read when a reply line may be one;
# this module's own error texts are there too (elmtext.text(n, ...), looked up when one is raised). Named
# __name__ + "text" (obdii.elmtext): no str constant of that name here.


class ElmError(Exception):
    """A failed query: .cmd (str; given as str, bytes or bytearray), .reply (str, cleaned reply text), .code (str;
    given as str or bytes: the ELM message, e.g. "NO DATA", or "TIMEOUT", "OVERFLOW", "BAD REPLY"), .meaning.
    One class for every failure, told apart by .code (a class each cost ~140 bytes of resident heap):
    "NO DATA" (no ECU answered: an unsupported PID or the ignition off), "TIMEOUT" (no prompt in
    time), "BAD REPLY" (ElmError(cmd, reply, meaning): a reply arrived but does not carry what was
    asked, malformed, wrong PID...), else the ELM message or "OVERFLOW"."""

    def __init__(self, cmd, reply, code, meaning=None):
        if meaning is None:  # ElmError(cmd, reply, meaning): a bad reply
            code, meaning = b"BAD REPLY", code
        # the command as sent (bytes: a literal b"ATRV" interns no name, a short str literal would)
        # or as text, the code the same way; .cmd and .code are text
        self.cmd = cmd if isinstance(cmd, str) else bytes(cmd).decode()
        self.reply = reply
        self.code = code = code if isinstance(code, str) else code.decode()
        self.meaning = meaning
        super().__init__("%s -> %r: %s (%s)" % (self.cmd, reply, code, meaning))


def hex_bytes(buf, s, e, data, off):
    """Decode the hex pairs in buf[s:e] (spaces ignored) into data[off:]. Returns the count,
    or -1 if the text has a non-hex character or an odd digit, or does not fit."""
    k = off
    hi = -1
    lim = len(data)
    for i in range(s, e):
        c = buf[i]
        if c == 32:
            continue
        v = hexval(c)
        if v < 0:
            return -1
        if hi < 0:
            hi = v
        else:
            if k >= lim:
                return -1
            data[k] = (hi << 4) | v
            k += 1
            hi = -1
    if hi >= 0:
        return -1
    return k - off


def eol(buf, s, n):
    """Index of the b"\r" ending the line that starts at s (or n)."""
    while s < n and buf[s] != 13:
        s += 1
    return s


class ElmLink:
    """Query/response link over a stream (readinto/write). `buf` holds the last reply."""

    # set by the constructor's body (obdii/adapter.py): declared for the type checker only (a bare
    # annotation compiles to nothing on MicroPython, and so does `if 1 - 1`: see telelogger/loop.py)
    if 1 - 1:
        from typing import Any
    stream: "Any"
    clock: "Any"
    buf: bytearray
    rx: bytearray
    _tx: bytearray
    _txv: dict
    poll_ms: int
    long_ms: int
    n: int
    tap: "Any"
    _busy: bool

    def __init__(self, *a, **k):  # (stream, clock=None, bufsize=384, poll_ms=5, long_ms=LONG_TIMEOUT_MS,
        # tap=None): run once, so its body is obdii/adapter.py's (imported for the call, dropped again)
        lookup("obdii.adapter", "new", self, a, k)

    async def query(self, cmd, timeout_ms=SHORT_TIMEOUT_MS):
        """Send cmd (str or bytes, no "\r"), return the cleaned reply lines (list of str)."""
        if await self.query_raw(cmd, timeout_ms) == 0:
            return []
        return self.text().split("\r")

    def text(self):
        """The last cleaned reply as text (for messages and logs)."""
        return bytes(self.buf[: self.n]).decode()

    async def query_raw(self, cmd, timeout_ms=SHORT_TIMEOUT_MS):
        """Like query() but allocation-light: returns n, the cleaned reply is buf[:n]
        (lines separated by b"\r"). Valid until the next query.

        The reply is cleaned in place to its meaningful lines joined by b"\r" (echo, blank,
        SEARCHING... and BUS INIT: ...OK lines and non-printable bytes dropped); a line that may
        be an ELM message (starting with one of their first letters and not hex data) is looked
        up in obdii/elmtext.py and raises."""
        clock = self.clock
        while self._busy:
            await clock.sleep_ms(self.poll_ms)
        self._busy = True
        try:
            if isinstance(cmd, str):
                cmd = cmd.encode()
            lc = len(cmd)
            tx = self._tx
            if lc + 1 > len(tx):
                raise ValueError(lookup(__name__ + "text", "text", 0, cmd))
            for i in range(lc):
                tx[i] = cmd[i]
            tx[lc] = 13
            txv = self._txv.get(lc)
            if txv is None:
                txv = self._txv[lc] = memoryview(tx)[: lc + 1]
            s = self.stream
            chunk = self.rx
            # drop a stale reply (e.g. the late answer to a timed-out command); bounded in
            # case the adapter is streaming (monitor mode)
            for _ in range(32):
                if not s.readinto(chunk):
                    break
            s.write(txv)
            buf = self.buf
            size = len(buf)
            t0 = clock.ticks_ms()
            limit = timeout_ms
            n = 0
            dots = 0
            extended = False
            overflow = False
            done = False
            while not done:
                k = s.readinto(chunk)
                if not k:
                    if clock.diff(clock.ticks_ms(), t0) >= limit:
                        break
                    await clock.sleep_ms(self.poll_ms)
                    continue
                for i in range(k):
                    c = chunk[i]
                    if c == 62:  # '>'
                        done = True
                        break
                    if n < size:
                        buf[n] = c
                        n += 1
                    else:
                        overflow = True
                    if c == 46:  # '.': "SEARCHING..." / "BUS INIT: ..." -> long wait, once
                        dots += 1
                        if dots >= 3 and not extended:
                            extended = True
                            t0 = clock.ticks_ms()
                            limit = self.long_ms
                    else:
                        dots = 0
            if done and self.tap is not None:
                self.tap(bytes(cmd), bytes(buf[:n]))
            # clean buf[:n] in place; w: the cleaned length
            w = 0
            p = 0
            first = True
            while p < n:
                e = p
                while e < n and buf[e] != 13 and buf[e] != 10:
                    e += 1
                ls = p
                le = e
                p = e + 1
                while ls < le and buf[ls] <= 32:
                    ls += 1
                while le > ls and buf[le - 1] <= 32:
                    le -= 1
                if ls == le:
                    continue
                if first:
                    first = False
                    if le - ls == lc and buf.find(cmd, ls, le) == ls:
                        continue  # echo
                if buf.find(b"SEARCHING", ls, le) == ls or (
                        buf.find(b"BUS INIT", ls, le) == ls and buf.find(b"ERROR", ls, le) < 0):
                    continue
                if w:
                    buf[w] = 13
                    w += 1
                for i in range(ls, le):
                    c = buf[i]
                    if 32 <= c < 127:
                        buf[w] = c
                        w += 1
            self.n = w
            if not done:
                raise ElmError(cmd, self.text(), b"TIMEOUT", lookup(__name__ + "text", "text", 1, limit))
            if overflow:
                raise ElmError(cmd, self.text(), b"OVERFLOW", lookup(__name__ + "text", "text", 2, size))
            p = 0
            while p < w:
                e = eol(buf, p, w)
                # first letters of the ELM messages: < ? A B C D E F L N S U
                if buf[p] in (60, 63, 65, 66, 67, 68, 69, 70, 76, 78, 83, 85) and hex_bytes(buf, p, e, chunk, 0) < 0:
                    # (code, meaning, row) of the first line that is an ELM message, or None: from
                    # obdii/elmtext.py, imported for the lookup and dropped again
                    t = lookup(__name__ + "text", "error", self.text())
                    if t is not None:
                        raise ElmError(cmd, self.text(), t[0], t[1])
                    break
                p = e + 1
            return w
        finally:
            self._busy = False

