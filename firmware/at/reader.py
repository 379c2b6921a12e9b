# The input side of the AT engine: one reader task owns the modem's input stream, frames it
# (at.lines.Framer) and hands every line to the command in flight, to a waiter of a deferred
# result or awaited URC, or to the URC handler registered for its prefix (also in the middle of a
# reply). Nothing may end the reader task: every exception is counted and survived, and a reader
# that ended anyway is restarted by the next command (ATEngine.cmd, alive()).
import asyncio

from at.lines import Framer
from at.reply import UNSOLICITED, default_meaning
from core.compat import DEFAULT_CLOCK, const, sleep_ms
from core.errors import lookup

POLL_MS = const(5)  # idle poll interval of the reader
_FAST_POLL_MS = const(1)  # while a command's reply, its prompt or a raw body is awaited
_CHUNK = const(256)  # read size


class ATReader:
    """Base of ATEngine: the reader task, URC registration and line dispatch. Its __init__ sets up
    the whole engine's state (one __init__ for both: meaning and the command side's lock/owed/resync
    too)."""

    def __init__(self, stream, clock=None, log=None, poll_ms=POLL_MS, meaning=default_meaning):
        self.stream = stream
        self.clock = clock or DEFAULT_CLOCK
        self.log = log
        self.poll_ms = poll_ms
        self._prompt = asyncio.Event()
        self.framer = Framer(self._on_line, self._prompt.set)
        self._rbuf = bytearray(_CHUNK)
        self._urcs = []  # [prefix, fn, body_len_fn, secret]
        self._waiters = []
        self._pending = None  # Reply of the command in flight
        self._pending_prefix = None
        self._pending_terms = None  # type: tuple | None
        self._done = asyncio.Event()
        self._task = None
        self._body_t0 = 0
        self.body_timeout_ms = 2000
        self.echo = True  # the module boots with echo on; updated from each reply
        self.unhandled = None  # optional fn(line) for lines nobody claimed
        self.warn = print  # fn(text): says once that the AT log went off
        self.stats = {"cmds": 0, "urcs": 0, "timeouts": 0, "errors": 0, "reboots": 0, "stray": 0, "reader_errors": 0, "restarts": 0}
        self.log_error = None  # why the AT log was turned off
        self.reader_error = None  # the last exception the reader survived
        self.meaning = meaning  # fn(prefix, code) -> text for '+CMD: <err>' codes (a driver's table)
        self._lock = asyncio.Lock()  # one command at a time
        self._owed = []  # waiters of deferred results whose callers were cancelled
        self._resync = False
        for p in UNSOLICITED:
            self.on_urc(p, None)

    # -- set-up ----------------------------------------------------------------------------------
    def start(self):
        """Start the reader task (call inside a running event loop)."""
        if self._task is None:
            self._task = asyncio.create_task(self._reader())
        return self._task

    def stop(self):
        if self._task is not None:
            self._task.cancel()
            self._task = None

    def alive(self):
        """True while the reader task runs (it survives every exception; this catches the rest)."""
        t = self._task
        return t is not None and not t.done()

    def on_urc(self, prefix, fn, body_len=None, secret=False):
        """Register fn(line, body) for lines starting with `prefix`. With body_len(line) -> n, the
        engine reads exactly n raw bytes after the line and passes them as `body` (secret: the
        body's bytes are masked with '*' in the AT log). fn None means 'known unsolicited,
        ignore'. A later registration for the same prefix replaces it."""
        for e in self._urcs:
            if e[0] == prefix:
                e[1] = fn
                e[2] = body_len
                e[3] = secret
                return
        self._urcs.append([prefix, fn, body_len, secret])

    def _rare(self, fn, *args):
        # a rare path (at/recover.py): its code is loaded for the call only
        return lookup("at.recover", fn, self, *args)

    # -- the transcript log (at.atlog.ATLog): it must never take the engine down ----------------
    def _log(self, name, *args):
        lg = self.log
        if lg is None:
            return
        try:
            getattr(lg, name)(*args)
        except Exception as e:  # noqa: BLE001 - OSError (flash full), MemoryError, a bad writer
            self.log = None  # off first: the rest may fail as well
            self.log_error = e
            try:
                self._rare("log_failed", lg, e)  # says so once, closes it
            except Exception:  # noqa: BLE001 - off all the same
                pass

    async def wait_urc(self, prefix, timeout_ms):
        """Await the next line starting with `prefix` (e.g. 'PB DONE' after power-on); returns it."""
        return await self._rare("wait_urc", prefix, timeout_ms)

    def _drop_waiter(self, w):
        if w in self._waiters:
            self._waiters.remove(w)

    # -- the reader ------------------------------------------------------------------------------
    async def _reader(self):
        # Nothing may end this task: it is the only reader of the UART. Every exception (a stream
        # error, the log, the framer, MemoryError) is counted and survived; a body being read when
        # it happened is given up as after a body timeout.
        buf = self._rbuf
        while True:
            fr = self.framer
            try:
                try:
                    n = self.stream.readinto(buf)
                except OSError:
                    n = 0
                if n:
                    if fr.in_body() and not self._body_t0:
                        self._body_t0 = self.clock.ticks_ms()
                    try:
                        fr.feed(buf, n)
                    finally:
                        if self.log:
                            self._log("received", buf, n, fr.masked)
                        if fr.masked:
                            fr.masked.clear()
                    if not fr.in_body():
                        self._body_t0 = 0
                elif fr.in_body():  # a raw body is due: bounded by body_timeout_ms
                    if not self._body_t0:
                        self._body_t0 = self.clock.ticks_ms()
                    elif self.clock.since(self._body_t0) > self.body_timeout_ms:
                        self._rare("body_timed_out")
            except Exception as e:  # noqa: BLE001
                n = 0
                self.stats["reader_errors"] += 1
                self.reader_error = e
                try:
                    self._rare("reader_failed", e)
                except Exception:  # noqa: BLE001 - even that could not load: drop the partial line/body
                    fr.reset()
            if n:
                await sleep_ms(0)  # let the waiters run; a stream that is never empty must not starve them
                continue
            # a reply is due: look again soon; idle: the relaxed interval (URCs are not urgent)
            busy = self._pending is not None or fr.in_body()
            await sleep_ms(_FAST_POLL_MS if busy else self.poll_ms)

    def _on_line(self, line):
        r = self._pending
        # 1. the echo of the command in flight
        if r is not None and line == r.cmd:
            r.echo = True
            return
        # 2. the module rebooted: fail what is pending, then tell the URC handlers
        if line == "RDY":
            self._rare("rebooted")
        # 3. the deferred result of the command in flight (may precede its OK)
        ws = self._waiters
        if ws:
            for w in ws:
                if w.owner is r and r is not None and line.startswith(w.prefix):
                    w.line = line
                    w.ev.set()
                    return
        # 4. a final result code
        if r is not None:
            fin = line == "OK" or line == "ERROR" or line.startswith("+CME ERROR:") or line.startswith("+CMS ERROR:")
            if not fin and self._pending_terms:
                for t in self._pending_terms:
                    if line.startswith(t):
                        r.lines.append(line)  # a caller-given terminator is also a line of the reply
                        fin = True
                        break
            if fin:
                if r.final is None:
                    r.final = line
                self._done.set()
                return
            # 5. the command's own response lines ('+CSQ: ...' for AT+CSQ)
            p = self._pending_prefix
            if p is not None and line.startswith(p):
                r.lines.append(line)
                return
        # 6. results of earlier commands and awaited URCs
        if ws:
            for w in ws:
                if w.line is None and w.error is None and line.startswith(w.prefix):
                    w.line = line
                    w.ev.set()
                    return
        # 7. registered URCs
        for e in self._urcs:
            if line.startswith(e[0]):
                self.stats["urcs"] += 1
                fn, bl = e[1], e[2]
                if bl is not None:
                    n = bl(line)
                    if n:

                        def done(body, fn=fn, line=line):
                            self._handle(fn, line, body)

                        try:
                            self.framer.expect_body(n, done, e[3] and self.log is not None)
                            return
                        except ValueError:
                            # longer than any body the module sends (a length garbled by line
                            # noise): reading it would swallow the replies that follow. The
                            # handler is told the body is lost, as after a body timeout.
                            self.stats["errors"] += 1
                            self._log("note", "body of %d bytes refused (buffer %d): %s" % (n, self.framer.body_max(), line))
                self._handle(fn, line, None)
                return
        # 8. anything else is part of the reply in flight (ATI, CCERTLIST...), except a '+XYZ:'
        # line of another command while a '+CMD' command is pending: an unregistered URC
        if r is not None and not (self._pending_prefix and line[0] == "+" and not line.startswith("+IP ERROR:")):
            r.lines.append(line)
        else:
            self.stats["stray"] += 1
            if self.unhandled:
                self.unhandled(line)

    def _handle(self, fn, line, body):
        """Run a URC handler; its exception must not end the reader task (nothing else would
        read the UART again), so it is counted and logged instead."""
        if fn is None:
            return
        try:
            fn(line, body)
        except Exception as e:  # noqa: BLE001 - any handler bug
            self.stats["errors"] += 1
            self._log("note", "URC handler for %r failed: %r" % (line, e))
