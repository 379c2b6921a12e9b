# The AT-command engine: one reader task owns the modem's input stream; commands are sent one
# at a time under a lock and complete on a final result code; everything that belongs to no
# pending command is an unsolicited result code (URC) dispatched by prefix, also when it arrives
# in the middle of a reply. Deferred results (+CMQTTCONNECT: 0,<err>, +NETOPEN: <err>, ...) are
# awaited after the command's OK, whichever order the module sends them in.
#
# Nothing here sleeps in place of waiting for the modem: every wait is on a reply, bounded by a
# timeout, and every failure is an exception naming the command, the code and its meaning.

#
# Secrets: the engine knows which commands carry credentials (MQTT/APN user and password, the SIM
# PIN) and which data bodies are certificates or keys; they reach neither the AT log nor any
# exception text (redact()). Incoming bodies registered secret (MQTT payloads) are masked in the log.
#
# The transcript log (at.atlog.ATLog, RotatingFile) is a module of its own, imported only when
# debug.at_log is on; `from at.engine import ATLog` still works (module __getattr__).

import asyncio

from at.lines import Framer
from core.compat import DEFAULT_CLOCK, const, sleep_ms, wait_for_ms

_POLL_MS = const(5)  # idle poll interval of the reader
_FAST_POLL_MS = const(1)  # while a command's reply, its prompt or a raw body is awaited
_CHUNK = const(256)  # data-entry write size: keeps the loop responsive during a 10 KB upload
SYNC_CMD = "AT+CMEE?"  # its reply carries its own '+CMEE:' line: unmistakable after a timeout
SYNC_MS = const(3000)

# Boot-time URCs the module prints unasked (seed thread; LilyGO T-SIM7600X#100)
BOOT_URCS = ("RDY", "+CPIN: READY", "SMS DONE", "PB DONE")

# Lines the module prints unasked that the engine recognises even with no handler registered,
# so they never pollute a reply in flight (T-SIM7600X#100, TinyGSM#309, [M] ch.16 URCs).
UNSOLICITED = BOOT_URCS + (
    "+CGEV:",
    "+CIPEVENT:",
    "+CMQTTNONET",
    "+CMQTTCONNLOST:",
    "+CMQTTPING:",
    "+CPIN: NOT READY",
)

# Commands whose arguments from the k-th on (0-based) are credentials: (prefix, k).
# AT+CMQTTCONNECT=<idx>,"<addr>",<keepalive>,<clean>[,"<user>"[,"<pass>"]]; AT+CGAUTH=<cid>,
# <type>,"<passwd>","<user>" (the order differs between manuals: both are hidden); AT+CPIN="<pin>"[,"<new>"].
SECRET_ARGS = (("AT+CMQTTCONNECT=", 4), ("AT+CGAUTH=", 2), ("AT+CPIN=", 0))
# Commands whose '>' data body is secret (certificates and private keys)
SECRET_BODY = ("AT+CCERTDOWN=",)
REDACTED = "<redacted>"


def _secret_at(cmd):
    """Index in cmd where its credentials start, or -1."""
    for p, k in SECRET_ARGS:
        if cmd.startswith(p):
            i = len(p)
            n = 0
            q = False
            while n < k and i < len(cmd):
                c = cmd[i]
                if c == '"':
                    q = not q
                elif c == "," and not q:
                    n += 1
                i += 1
            return i if n == k and i < len(cmd) else -1
    return -1


def redact(cmd):
    """cmd with its credentials replaced by '<redacted>' (unchanged when it carries none)."""
    if not isinstance(cmd, str):
        return cmd
    i = _secret_at(cmd)
    return cmd if i < 0 else cmd[:i] + REDACTED


class ATError(Exception):
    """Base of the engine's errors: `cmd` (the command line), `code` (int or text or None),
    `meaning` (what the code means), `lines` (intermediate lines received)."""

    def __init__(self, cmd, code=None, meaning=None, lines=None, msg=None):
        cmd = redact(cmd)
        super().__init__(cmd)
        self.cmd = cmd
        self.code = code
        self.meaning = meaning
        self.lines = lines or []
        self.msg = msg

    def __str__(self):
        s = "%s: %s" % (self.cmd, self.msg or type(self).__name__)
        if self.code is not None:
            s += " (error %s: %s)" % (self.code, self.meaning)
        return s


class ATTimeout(ATError):
    pass


class ATCommandError(ATError):
    """ERROR final result (code/meaning from a '+CMD: <idx>,<err>' or '+IP ERROR:' line when the
    module sent one)."""


class CMEError(ATError):
    pass


class CMSError(ATError):
    pass


class ATNoPrompt(ATError):
    """A data-entry command completed before its '>' prompt: the data was NOT written."""


class ModemRebooted(ATError):
    """The module printed RDY (it rebooted) while a command or a result was pending."""


class Reply:
    __slots__ = ("cmd", "lines", "final", "result", "echo")

    def __init__(self, cmd):
        self.cmd = cmd
        self.lines = []
        self.final = None
        self.result = None
        self.echo = False

    def value(self, prefix):
        """Text after `prefix` of the first intermediate line that starts with it, stripped."""
        for ln in self.lines:
            if ln.startswith(prefix):
                return ln[len(prefix) :].strip()
        return None

    def values(self, prefix):
        return [ln[len(prefix) :].strip() for ln in self.lines if ln.startswith(prefix)]

    def __repr__(self):
        return "Reply(%r, lines=%r, final=%r, result=%r)" % (redact(self.cmd), self.lines, self.final, self.result)


class _Waiter:
    """A deferred result or awaited URC: the first line starting with `prefix`."""

    __slots__ = ("prefix", "line", "error", "ev", "owner")

    def __init__(self, prefix, owner=None):
        self.prefix = prefix
        self.line = None
        self.error = None
        self.ev = asyncio.Event()
        self.owner = owner


def response_prefix(cmd):
    """'AT+CSQ' -> '+CSQ:'; 'AT+CMQTTTOPIC=0,5' -> '+CMQTTTOPIC:'; 'ATI' -> None."""
    if not cmd.startswith("AT+") and not cmd.startswith("at+"):
        return None
    end = len(cmd)
    for ch in "=?":
        k = cmd.find(ch)
        if 0 < k < end:
            end = k
    return cmd[2:end].upper() + ":"


def default_meaning(prefix, code):
    """Meaning of an error code reported on a '+CMD:' line. The engine knows no command family's
    table; a driver installs its own (modem.cmqtt sets ATEngine.meaning for +CMQTT codes)."""
    return "error %s" % code


def cme_meaning(code):
    """The 3GPP text of +CME ERROR <code> (table at/cme.py, read on demand)."""
    if isinstance(code, int):
        from core.errors import lookup

        m = lookup("at.cme", "meaning", code)
        if m:
            return m
    return "CME error %s" % code


def __getattr__(name):
    # the transcript log lives in at/atlog.py (imported only when it is used)
    if name in ("ATLog", "RotatingFile"):
        from at import atlog

        return getattr(atlog, name)
    raise AttributeError(name)


class ATEngine:
    def __init__(self, stream, clock=None, log=None, poll_ms=_POLL_MS, meaning=default_meaning):
        self.stream = stream
        self.clock = clock or DEFAULT_CLOCK
        self.log = log
        self.poll_ms = poll_ms
        self.meaning = meaning
        self.framer = Framer(self._on_line, self._on_prompt)
        self._rbuf = bytearray(_CHUNK)
        self._lock = asyncio.Lock()
        self._urcs = []  # [prefix, fn, body_len_fn]
        self._waiters = []
        self._owed = []  # waiters of deferred results whose callers were cancelled
        self._pending = None  # Reply of the command in flight
        self._pending_prefix = None
        self._pending_terms = None
        self._done = asyncio.Event()
        self._prompt = asyncio.Event()
        self._task = None
        self._body_t0 = 0
        self._resync = False
        self.body_timeout_ms = 2000
        self.echo = True  # the module boots with echo on; updated from each reply
        self.unhandled = None  # optional fn(line) for lines nobody claimed
        self.warn = print  # fn(text): says once that the AT log went off
        self.stats = {"cmds": 0, "urcs": 0, "timeouts": 0, "errors": 0, "reboots": 0, "stray": 0, "reader_errors": 0, "restarts": 0}
        self.log_error = None  # why the AT log was turned off
        self.reader_error = None  # the last exception the reader survived
        self._hold = None  # RECV bytes held back while a command with credentials is in flight
        self._secrets = None  # what to mask in them
        self._secret_body = False  # the data body in flight is a certificate/key
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

    def _revive(self):
        # a started reader that ended: nothing reads the UART any more. Start a fresh one; what
        # was half-read is lost, so the next command re-synchronises first.
        self._task = None
        self.framer.reset()
        self._resync = True
        self.stats["restarts"] += 1
        self._log(2, "AT reader had stopped: restarted")
        self.start()

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

    # -- the transcript log: it must never take the engine down ------------------------------
    def _log(self, kind, data):
        lg = self.log
        if lg is None:
            return
        try:
            if kind == 0:
                lg.sent(data)
            elif kind == 1:
                lg.recv(data)
            else:
                lg.note(data)
        except Exception as e:  # noqa: BLE001 - OSError (flash full), MemoryError, a bad writer
            self.log = None
            self.log_error = e
            self.warn("AT log off: writing it failed (%r); the modem link goes on without it" % e)
            try:
                lg.close()
            except Exception:  # noqa: BLE001
                pass

    def _hold_begin(self, cmd, data):
        # a command with credentials (or a secret body): its echo must not reach the log verbatim;
        # RECV bytes are held until the command ends and logged with the secrets masked
        self._secret_body = False
        if data is not None:
            for p in SECRET_BODY:
                if cmd.startswith(p):
                    self._secret_body = True
        if self.log is None:
            return
        sec = []
        i = _secret_at(cmd)
        if i >= 0:
            sec.append(cmd[i:].encode())
        if self._secret_body:
            sec.append(bytes(data))
        if sec:
            self._secrets = sec
            self._hold = bytearray()

    def _hold_end(self):
        h = self._hold
        if h is None:
            return
        self._hold = None
        b = bytes(h)
        for x in self._secrets:
            b = b.replace(x, REDACTED.encode())
        self._secrets = None
        if b:
            self._log(1, b)

    # -- commands --------------------------------------------------------------------------------
    async def cmd(
        self,
        cmd,
        timeout_ms=1000,
        data=None,
        result=None,
        result_timeout_ms=None,
        prompt_timeout_ms=None,
        terminators=None,
    ):
        """Send `cmd`, return its Reply once the final result code arrived.

        data: bytes for '>' data entry (exactly len(data) bytes are written after the prompt).
        result: prefix of a deferred result line ('+CMQTTCONNECT: 0,'); awaited after the final
          OK for up to result_timeout_ms; its text after the prefix is Reply.result.
        terminators: extra final lines (prefixes) that complete the command successfully.
        """
        if isinstance(data, str):
            data = data.encode()
        if self._task is not None and self._task.done():
            self._revive()
        r = Reply(cmd)
        w = _Waiter(result, r) if result is not None else None
        # The exchange (command line, prompt, data, final result) runs in a task of its own and
        # always runs to its end, bounded by its timeouts: a caller cancelled half-way (standby,
        # shutdown) must not leave the module with half a '>' data entry or an unread reply that
        # would complete the next command. The caller only stops waiting.
        box = [None, asyncio.Event(), False]  # [error, done, abandoned by the caller]
        rt = result_timeout_ms or timeout_ms
        asyncio.create_task(self._run_exchange(box, r, cmd, timeout_ms, data, prompt_timeout_ms, terminators, w, rt))
        try:
            await box[1].wait()
        except BaseException:  # cancelled: the task completes the exchange (and keeps any result owed)
            box[2] = True
            if w is not None and w not in self._owed:
                self._owed.append(w)  # visible to owed() at once, before the exchange ends
            raise
        if box[0] is not None:
            if w is not None:
                self._drop_waiter(w)
            raise box[0]
        if w is None:
            return r
        try:
            if w.line is None and w.error is None:
                try:
                    await wait_for_ms(w.ev.wait(), rt)
                except asyncio.TimeoutError:
                    self.stats["timeouts"] += 1
                    raise ATTimeout(cmd, msg="OK, but no %s result within %d ms" % (w.prefix.strip(), rt))
                except BaseException:  # cancelled while the result is owed: the module is still busy
                    self._keep_owed(w, rt)
                    w = None
                    raise
            if w.error is not None:
                raise w.error
            line = w.line
            if line is None:  # the event is set only with a line or an error
                raise ATError(cmd, msg="result %s signalled without a line" % w.prefix.strip())
            r.result = line[len(w.prefix) :].strip()
            return r
        finally:
            if w is not None:
                self._drop_waiter(w)

    async def _run_exchange(self, box, r, cmd, timeout_ms, data, prompt_timeout_ms, terminators, w, rt):
        try:
            async with self._lock:
                if self._resync:
                    await self._sync()
                if w is not None:
                    self._waiters.append(w)
                await self._exchange(r, cmd, timeout_ms, data, prompt_timeout_ms, terminators, w)
        except Exception as e:  # handed to the caller: a task's own exception would go unretrieved
            box[0] = e
        if box[2] and w is not None:  # the caller is gone
            if box[0] is None:
                self._keep_owed(w, rt)
            else:
                self._release_owed(w, box[0])  # not sent/refused: nothing is owed
        box[1].set()

    # -- results owed to callers that were cancelled ------------------------------------------
    def _keep_owed(self, w, ms):
        """The command went out (OK) but its caller stopped waiting for the deferred result: the
        module is still busy with it (a CMQTT client answers 14 to the next command). Keep the
        waiter, so the result line is recognised and owed() reports it, until it comes or ms pass."""
        if w.line is not None or w.error is not None:
            self._release_owed(w)
            return
        if w not in self._owed:
            self._owed.append(w)
        asyncio.create_task(self._expire_owed(w, ms))

    async def _expire_owed(self, w, ms):
        try:
            await wait_for_ms(w.ev.wait(), ms)
            self._release_owed(w)
        except asyncio.TimeoutError:
            self._release_owed(w, ATTimeout(w.prefix.strip(), msg="owed result not received within %d ms" % ms))

    def _release_owed(self, w, err=None):
        if w in self._owed:
            self._owed.remove(w)
        if w.line is None and w.error is None:
            w.error = err or ATError(w.prefix.strip(), msg="no result owed")
        w.ev.set()  # wakes whoever waits in owed()
        self._drop_waiter(w)

    def owed(self, prefix):
        """A deferred result starting with `prefix` that the module still owes to a cancelled
        caller (its waiter, whose .ev is set when the result or an error comes), or None."""
        for w in self._owed:
            if w.line is None and w.error is None and w.prefix.startswith(prefix):
                return w
        return None

    async def _exchange(self, r, cmd, timeout_ms, data, prompt_timeout_ms, terminators, w):
        self._pending = r
        self._pending_prefix = response_prefix(cmd)
        self._pending_terms = terminators
        self._done.clear()
        self._prompt.clear()
        self.framer.want_prompt = data is not None
        self.stats["cmds"] += 1
        self._hold_begin(cmd, data)
        try:
            self._write(cmd.encode() + b"\r", _secret_at(cmd) >= 0)
            if data is not None:
                try:
                    await wait_for_ms(self._wait_prompt_or_done(), prompt_timeout_ms or timeout_ms)
                except asyncio.TimeoutError:
                    self._timeout(cmd, "no '>' prompt within %d ms" % (prompt_timeout_ms or timeout_ms))
                if r.final is None:
                    self.framer.expect_echo(data)
                    await self._write_data(data)
                elif r.final == "OK" or (terminators and not isinstance(r.final, ATError) and r.final != "ERROR"):
                    # line noise forming 'OK' (or a stray late OK) before the prompt: the data was never
                    # written and the module may still be waiting for it. Success here would e.g. publish
                    # an empty payload; fail, and re-synchronise before the next command.
                    self._resync = True
                    raise ATNoPrompt(cmd, msg="final result %s before the '>' prompt: data not sent" % r.final)
            if r.final is None:
                try:
                    await wait_for_ms(self._done.wait(), timeout_ms)
                except asyncio.TimeoutError:
                    self._timeout(cmd, "no final result within %d ms" % timeout_ms)
        finally:
            self._pending = None
            self._pending_prefix = None
            self.framer.want_prompt = False
            self._hold_end()
        self.echo = r.echo
        self._check_final(r, w)

    async def _wait_prompt_or_done(self):
        # whichever comes first: the prompt, or a final result (ERROR instead of '>')
        while not self._prompt.is_set() and not self._done.is_set():
            await sleep_ms(_FAST_POLL_MS)

    async def _write_data(self, data):
        mv = memoryview(data)
        for i in range(0, len(mv), _CHUNK):
            self.stream.write(mv[i : i + _CHUNK])
            if len(mv) > _CHUNK:
                await sleep_ms(0)
        if self.log:
            self._log(0, ("<%d bytes redacted>" % len(data)).encode() if self._secret_body else data)

    def _timeout(self, cmd, why):
        self.stats["timeouts"] += 1
        # a late reply to this command must not complete the next one: re-synchronise first
        self._resync = True
        raise ATTimeout(cmd, msg=why)

    def _check_final(self, r, w):
        f = r.final
        if f == "OK" or f is None:
            return
        if isinstance(f, ATError):
            raise f
        self.stats["errors"] += 1
        cmd = r.cmd
        if f.startswith("+CME ERROR:"):
            code = _num(f[11:].strip())
            raise CMEError(cmd, code, cme_meaning(code) if isinstance(code, int) else code, r.lines, "+CME ERROR")
        if f.startswith("+CMS ERROR:"):
            code = _num(f[11:].strip())
            raise CMSError(cmd, code, "message service error", r.lines, "+CMS ERROR")
        if f == "ERROR":
            code, meaning, pfx = None, None, response_prefix(cmd)
            if w is not None and w.line is not None:  # '+CMD: 0,<err>' then ERROR
                code = _last_int(w.line[len(w.prefix) :])
                pfx = w.prefix
            else:
                for ln in r.lines:
                    if pfx and ln.startswith(pfx):
                        code = _last_int(ln[len(pfx) :])
                    elif ln.startswith("+IP ERROR:"):
                        code, meaning = "IP", ln[10:].strip()
            if isinstance(code, int):
                meaning = self.meaning(pfx, code)
            raise ATCommandError(cmd, code, meaning, r.lines, "ERROR")
        # a caller-given terminator ends the command successfully

    async def wait_urc(self, prefix, timeout_ms):
        """Await the next line starting with `prefix` (e.g. 'PB DONE' after power-on); returns it."""
        w = _Waiter(prefix)
        self._waiters.append(w)
        try:
            try:
                await wait_for_ms(w.ev.wait(), timeout_ms)
            except asyncio.TimeoutError:
                raise ATTimeout("(waiting for %s)" % prefix, msg="not received within %d ms" % timeout_ms)
            if w.error is not None:
                raise w.error
            return w.line
        finally:
            self._drop_waiter(w)

    def _drop_waiter(self, w):
        if w in self._waiters:
            self._waiters.remove(w)

    async def _sync(self):
        """After a timeout, the timed-out command's reply may still come (the module answers in
        order). Send AT+CMEE? and swallow everything up to ITS reply, recognised by its own
        '+CMEE:' line, so a late final result cannot complete the next command. Bounded by
        SYNC_MS; if the module stays silent the next command goes out anyway (and syncs again
        after its own timeout)."""
        self._resync = False
        r = Reply(SYNC_CMD)
        self._pending = r
        self._pending_prefix = "+CMEE:"
        self._pending_terms = None
        self._done.clear()
        t0 = self.clock.ticks_ms()
        try:
            self._write(SYNC_CMD.encode() + b"\r")
            while True:
                left = SYNC_MS - self.clock.since(t0)
                if left <= 0:
                    self._resync = True
                    return
                try:
                    await wait_for_ms(self._done.wait(), left)
                except asyncio.TimeoutError:
                    self._resync = True
                    return
                if isinstance(r.final, ATError):  # rebooted: nothing late can come any more
                    return
                if r.value("+CMEE:") is not None or r.final != "OK":
                    return  # our reply (ERROR: a module without CMEE; then the stream is quiet too)
                r.final = None  # a late OK of the timed-out command: keep waiting for ours
                r.lines = []
                self._done.clear()
        finally:
            self._pending = None
            self._pending_prefix = None

    def _write(self, b, secret=False):
        self.stream.write(b)
        if self.log:
            self._log(0, (redact(str(b, "utf-8")[:-1]) + "\r").encode() if secret else b)

    # -- the reader ------------------------------------------------------------------------------
    async def _reader(self):
        # Nothing may end this task: it is the only reader of the UART. Every exception (a stream
        # error, the log, the framer, MemoryError) is counted and survived; a body being read when
        # it happened is given up as after a body timeout.
        while True:
            try:
                n = self._read_once()
            except Exception as e:  # noqa: BLE001
                n = 0
                self._reader_failed(e)
            if n:
                await sleep_ms(0)  # let the waiters run; a stream that is never empty must not starve them
                continue
            # a reply is due: look again soon; idle: the relaxed interval (URCs are not urgent)
            busy = self._pending is not None or self.framer.in_body()
            await sleep_ms(_FAST_POLL_MS if busy else self.poll_ms)

    def _read_once(self):
        buf = self._rbuf
        fr = self.framer
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
                    self._log_recv(buf, n)
                if fr.masked:
                    fr.masked.clear()
            if not fr.in_body():
                self._body_t0 = 0
            return n
        if fr.in_body():
            if not self._body_t0:
                self._body_t0 = self.clock.ticks_ms()
            elif self.clock.since(self._body_t0) > self.body_timeout_ms:
                self._body_timed_out()
        return 0

    def _log_recv(self, buf, n):
        sp = self.framer.masked
        if sp:  # secret bodies (incoming payloads): the log gets '*' for each of their bytes
            b = bytearray(buf[:n])
            for k in range(0, len(sp), 2):
                for j in range(sp[k], sp[k + 1]):
                    b[j] = 42
            data = b
        else:
            data = memoryview(buf)[:n]
        h = self._hold
        if h is not None and len(h) < 4096:
            h.extend(data)
        elif h is not None:  # bounded: a long exchange is logged without its RECV bytes
            self._log(2, "(%d received bytes not logged: a command with credentials was in flight)" % n)
        else:
            self._log(1, data)

    def _reader_failed(self, e):
        self.stats["reader_errors"] += 1
        self.reader_error = e
        try:
            self.framer.masked = []
            if self.framer.in_body():
                self._body_timed_out()
            self._log(2, "AT reader survived %r" % e)
        except Exception:  # noqa: BLE001 - even this must not end the reader
            pass

    def _body_timed_out(self):
        cb = self.framer._body_cb
        self.framer.abort_body()
        self._body_t0 = 0
        self.stats["timeouts"] += 1
        if cb:
            cb(None)

    def _on_prompt(self):
        self._prompt.set()

    def _on_line(self, line):
        r = self._pending
        # 1. the echo of the command in flight
        if r is not None and line == r.cmd:
            r.echo = True
            return
        # 2. the module rebooted: fail what is pending, then tell the URC handlers
        if line == "RDY":
            self._rebooted()
        # 3. the deferred result of the command in flight (may precede its OK)
        ws = self._waiters
        if ws:
            for w in ws:
                if w.owner is r and r is not None and line.startswith(w.prefix):
                    self._fill(w, line)
                    return
        # 4. a final result code
        if r is not None:
            if line == "OK" or line == "ERROR" or line.startswith("+CME ERROR:") or line.startswith("+CMS ERROR:"):
                self._finish(r, line)
                return
            if self._pending_terms:
                for t in self._pending_terms:
                    if line.startswith(t):
                        r.lines.append(line)
                        self._finish(r, line)
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
                    self._fill(w, line)
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
                            self._log(2, "body of %d bytes refused (buffer %d): %s" % (n, self.framer.body_max(), line))
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
            self._log(2, "URC handler for %r failed: %r" % (line, e))

    def _fill(self, w, line):
        w.line = line
        w.ev.set()

    def _finish(self, r, final):
        if r.final is None:
            r.final = final
        self._done.set()

    def _rebooted(self):
        self.stats["reboots"] += 1
        self.echo = True  # a fresh boot has echo on again
        self.framer.reset()
        r = self._pending
        if r is not None:
            self._finish(r, ModemRebooted(r.cmd, msg="the modem rebooted (RDY) during the command"))
        for w in self._waiters:  # deferred results die with the session; plain URC waits go on
            if w.owner is not None and w.line is None:
                w.error = ModemRebooted(w.owner.cmd, msg="the modem rebooted (RDY) before the result")
                w.ev.set()


def _num(s):
    try:
        return int(s)
    except ValueError:
        return s


def _last_int(s):
    k = s.rfind(",")
    try:
        return int(s[k + 1 :].strip())
    except ValueError:
        return None
