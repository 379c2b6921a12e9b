# The AT engine's input side and what it hands back.
# - What it hands back: the Reply of a command, the exceptions of a failed one (all ATError: `.cmd`
#   redacted (at/redact.py, on demand), `.kind`, `.code`, `.meaning`, `.lines`), the URC prefixes
#   the engine knows without a handler. at.engine re-exports every name here
#   (`from at.engine import ATError, TIMEOUT` works).
# - The reader: one reader task owns the modem's input stream, frames it (at.lines.Framer) and
#   hands every line to the command in flight, to a waiter of a deferred result or awaited URC, or
#   to the URC handler registered for its prefix (also in the middle of a reply). Nothing may end
#   the reader task: every exception is counted and survived, and a reader that ended anyway is
#   restarted by the next command (ATEngine.cmd).
import asyncio

from at.lines import Framer
from core.compat import DEFAULT_CLOCK, const, sleep_ms
from core.errors import lookup

_POLL_MS = const(5)  # idle poll interval of the reader
_FAST_POLL_MS = const(1)  # while a command's reply, its prompt or a raw body is awaited
_CHUNK = const(256)  # read size

# ---- what the engine hands back ---------------------------------------------------------------
# Lines the module prints unasked that the engine recognises even with no handler registered,
# so they never pollute a reply in flight (T-SIM7600X#100, TinyGSM#309, [M] ch.16 URCs). The first
# four are the boot-time URCs (seed thread; LilyGO T-SIM7600X#100): modem.codes.BOOT_URCS, sliced
# off this tuple where it is asked for (modem/code_texts.py); [6:9] are the CMQTT session-down URCs
# modem.cmqtt handles (its texts are these: one str each, not one per module).
UNSOLICITED = (
    "RDY",
    "+CPIN: READY",
    "SMS DONE",
    "PB DONE",
    "+CGEV:",
    "+CIPEVENT:",
    "+CMQTTNONET",
    "+CMQTTCONNLOST:",
    "+CMQTTPING:",
    "+CPIN: NOT READY",
)

# ATError.kind: which failure it is (data, not a class each: a class costs ~125 bytes of heap). Its
# name in a text (str() without a msg): the class it once was, at.fail.name.
TIMEOUT = const(1)  # no reply, prompt or result in time ('ATTimeout')
ERROR = const(2)  # final result ERROR; code/meaning from a '+CMD: <idx>,<err>' or '+IP ERROR:' line
CME = const(3)  # +CME ERROR: <n|text>
CMS = const(4)  # +CMS ERROR: <n>
NO_PROMPT = const(5)  # a data-entry command completed before its '>' prompt: the data was NOT written
REBOOTED = const(6)  # the module printed RDY (it rebooted) while a command or a result was pending


class ATError(Exception):
    """The engine's error: `cmd` (the command line), `kind` (0 or one of the kinds above), `code`
    (int or text or None), `meaning` (what the code means), `lines` (intermediate lines received)."""

    def __init__(self, cmd, code=None, meaning=None, lines=None, msg=None, kind=0):
        # its credentials never reach an error text: every command with credentials is an AT+C... with
        # them quoted (at/redact.py; host_tests/test_no_secrets.py checks the firmware's commands), so
        # AT+CPIN? failing with SIM busy after a boot or AT+CMQTTREL=0 in a recovery does not load at.redact
        if isinstance(cmd, str) and cmd[:4] == "AT+C" and '"' in cmd:
            cmd = lookup("at.redact", "redact", cmd)
        super().__init__(cmd)
        self.cmd = cmd
        self.kind = kind
        self.code = code
        self.meaning = meaning
        self.lines = lines or []
        self.msg = msg

    def __str__(self):
        s = "%s: %s" % (self.cmd, self.msg or lookup("at.fail", "name", self.kind))
        if self.code is not None:
            s += " (error %s: %s)" % (self.code, self.meaning)
        return s


class Reply:
    def __init__(self, cmd):
        self.cmd = cmd
        self.lines = []
        self.final = None
        self.result = None
        self.echo = False

    def value(self, prefix=None):
        """Text after `prefix` of the first intermediate line that starts with it, stripped. prefix
        None: the command's own response prefix ('+CSQ:' for AT+CSQ, response_prefix)."""
        if prefix is None:
            prefix = response_prefix(self.cmd)
            if prefix is None:
                return None
        for ln in self.lines:
            if ln.startswith(prefix):
                return ln[len(prefix) :].strip()
        return None


def response_prefix(cmd):
    """'AT+CSQ' -> '+CSQ:'; 'AT+CMQTTTOPIC=0,5' -> '+CMQTTTOPIC:'; 'ATI' -> None."""
    if cmd.find("+") != 2 or not (cmd.startswith("AT") or cmd.startswith("at")):
        return None
    end = len(cmd)
    k = cmd.find("=")
    if k > 0:
        end = k
    k = cmd.find("?")
    if 0 < k < end:
        end = k
    return cmd[2:end].upper() + ":"


class Waiter:
    """A deferred result or awaited URC: the first line starting with `prefix`."""

    def __init__(self, prefix, owner=None):
        self.prefix = prefix
        self.line = None
        self.error = None
        self.ev = asyncio.Event()
        self.owner = owner


# ---- the reader --------------------------------------------------------------------------------
class ATReader:
    """Base of ATEngine: the reader task, URC registration and line dispatch. Its __init__ sets up
    the whole engine's state (one __init__ for both: meaning and the command side's lock/owed/resync
    too). The settings and diagnostics below are class defaults an instance may override."""

    body_timeout_ms = 2000  # a raw body announced by a URC line must be complete within this
    unhandled = None  # optional fn(line) for lines nobody claimed
    warn = print  # fn(text): says once that the AT log went off
    log_error = None  # why the AT log was turned off
    reader_error = None  # the last exception the reader survived
    # fn(prefix, code) -> text for '+CMD: <err>' codes: a driver's table (modem.cmqtt sets its own);
    # None: "error <code>"
    meaning = None

    def __init__(self, stream, clock=None, log=None, poll_ms=_POLL_MS, meaning=None):
        self.stream = stream
        if meaning is not None:
            self.meaning = meaning
        self.clock = clock or DEFAULT_CLOCK
        self.log = log
        self.poll_ms = poll_ms
        self._prompt = asyncio.Event()
        self.framer = Framer(self.on_line, self._prompt.set)
        # [prefix, fn, body_len_fn, secret] per registered prefix (UNSOLICITED: known without one)
        self.urcs = []
        self._waiters = []
        self.pending = None  # Reply of the command in flight
        self.prefix = None  # its response prefix ('+CSQ:' for AT+CSQ)
        # its caller-given final lines
        self.terminators = None  # type: tuple | None
        self._done = asyncio.Event()
        self._task = None
        self.echo = True  # the module boots with echo on; updated from each reply
        self.stats = {"cmds": 0, "urcs": 0, "timeouts": 0, "errors": 0, "reboots": 0, "stray": 0, "reader_errors": 0, "restarts": 0}
        self._lock = asyncio.Lock()  # one command at a time
        self._owed = []  # waiters of deferred results whose callers were cancelled
        self._resync = False

    # -- set-up ----------------------------------------------------------------------------------
    def start(self):
        """Start the reader task (call inside a running event loop); it runs while `_task` is
        not done (it survives every exception; a command restarts one that ended anyway)."""
        if self._task is None:
            self._task = asyncio.create_task(self.reader())
        return self._task

    def stop(self):
        if self._task is not None:
            self._task.cancel()
            self._task = None

    def on_urc(self, prefix, fn, body_len=None, secret=False):
        """Register fn(line, body) for lines starting with `prefix`. With body_len(line) -> n, the
        engine reads exactly n raw bytes after the line and passes them as `body` (secret: the
        body's bytes are masked with '*' in the AT log). fn None means 'known unsolicited,
        ignore'. A later registration for the same prefix replaces it."""
        u = self.urcs
        for i in range(len(u)):
            if u[i][0] == prefix:
                u[i] = [prefix, fn, body_len, secret]
                return
        u.append([prefix, fn, body_len, secret])

    def _rare(self, fn, *args):
        # a rare path, its code loaded for the call only: an error's exception ("failed", "final_error":
        # at/fail.py), else a recovery (at/recover.py)
        return lookup("at.fail" if fn[0] == "f" else "at.recover", fn, self, *args)

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

    def wait_urc(self, prefix, timeout_ms):
        """Await the next line starting with `prefix` (e.g. 'PB DONE' after power-on); returns it.
        (The coroutine of at.recover.wait_urc: `await at.wait_urc(...)`.)"""
        return self._rare("wait_urc", prefix, timeout_ms)

    # -- the reader ------------------------------------------------------------------------------
    async def reader(self):
        # Nothing may end this task: it is the only reader of the UART. Every exception (a stream
        # error, the log, the framer, MemoryError) is counted and survived; a body being read when
        # it happened is given up as after a body timeout.
        buf = bytearray(_CHUNK)
        t0 = 0  # since when a raw body is awaited (0: none is)
        while True:
            fr = self.framer
            try:
                try:
                    n = self.stream.readinto(buf)
                except OSError:
                    n = 0
                if n:
                    if fr.body_len and not t0:
                        t0 = self.clock.ticks_ms()
                    try:
                        fr.feed(buf, n)
                    finally:
                        if self.log:
                            self._log("received", buf, n, fr.masked)
                        if fr.masked:
                            fr.masked.clear()
                    if not fr.body_len:
                        t0 = 0
                elif fr.body_len:  # a raw body is due: bounded by body_timeout_ms
                    if not t0:
                        t0 = self.clock.ticks_ms()
                    elif self.clock.since(t0) > self.body_timeout_ms:
                        t0 = 0
                        self._rare("body_timed_out")
            except Exception as e:  # noqa: BLE001
                n = t0 = 0  # a body being read is given up (reader_failed)
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
            busy = self.pending is not None or fr.body_len
            await sleep_ms(_FAST_POLL_MS if busy else self.poll_ms)

    def on_line(self, line):
        r = self.pending
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
            if not fin and self.terminators:
                for t in self.terminators:
                    if line.startswith(t):
                        r.lines.append(line)  # a caller-given terminator is also a line of the reply
                        fin = True
                        break
            if fin:
                if r.final is None:
                    r.final = line
                self._done.set()
                self._prompt.set()  # a data-entry command waiting for '>' got its final result instead
                return
            # 5. the command's own response lines ('+CSQ: ...' for AT+CSQ)
            p = self.prefix
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
        for e in self.urcs:
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
                            if self.log:
                                self._rare("refused", n, line)  # a note in the AT log
                self._handle(fn, line, None)
                return
        for p in UNSOLICITED:  # known, nobody asked for them: ignored
            if line.startswith(p):
                self.stats["urcs"] += 1
                return
        # 8. anything else is part of the reply in flight (ATI, CCERTLIST...), except a '+XYZ:'
        # line of another command while a '+CMD' command is pending: an unregistered URC
        if r is not None and not (self.prefix and line[0] == "+" and not line.startswith("+IP ERROR:")):
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
            if self.log:
                self._rare("handler_failed", line, e)  # a note in the AT log
