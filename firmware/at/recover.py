# The AT engine's rare paths: re-synchronising after a timeout, results owed to cancelled callers,
# the module rebooting (RDY) and a reader task that ended (the errors themselves: at/fail.py). Imported through core.errors.lookup
# when one of them happens and dropped again, so their bytecode is not resident on the ESP32.
# Every function takes the ATEngine first. Its names come through at.engine, which holds the reader
# module it was built with: the same classes as the engine's even if at.reader left sys.modules.
import asyncio

from at import engine  # (its names as engine.X: one global, not ten: the module's globals table is one block)
from core.compat import const, wait_for_ms

_SYNC_MS = const(3000)  # how long sync() waits for its own reply


def revive(at):
    # a started reader that ended: nothing reads the UART any more. Start a fresh one; what
    # was half-read is lost, so the next command re-synchronises first.
    at._task = None
    at.framer.reset()
    at._resync = True
    at.stats["restarts"] += 1
    at._log("note", "AT reader had stopped: restarted")
    at.start()


def keep_owed(at, w, ms):
    """The command went out (OK) but its caller stopped waiting for the deferred result: the
    module is still busy with it (a CMQTT client answers 14 to the next command). Keep the
    waiter, so the result line is recognised and owed() reports it, until it comes or ms pass."""
    if w.line is not None or w.error is not None:
        release_owed(at, w)
        return
    if w not in at._owed:
        at._owed.append(w)
    asyncio.create_task(expire_owed(at, w, ms))


async def expire_owed(at, w, ms):
    try:
        await wait_for_ms(w.ev.wait(), ms)
        release_owed(at, w)
    except asyncio.TimeoutError:
        release_owed(at, w, engine.ATError(w.prefix.strip(), msg="owed result not received within %d ms" % ms, kind=engine.TIMEOUT))


def release_owed(at, w, e=None):
    if w in at._owed:
        at._owed.remove(w)
    if w.line is None and w.error is None:
        w.error = e or engine.ATError(w.prefix.strip(), msg="no result owed")
    w.ev.set()  # wakes whoever waits in owed()
    if w in at._waiters:
        at._waiters.remove(w)


async def sync(at):
    """After a timeout, the timed-out command's reply may still come (the module answers in
    order). Send AT+CMEE? and swallow everything up to ITS reply, recognised by its own
    '+CMEE:' line (unmistakable after a timeout), so a late final result cannot complete the next
    command. Bounded by _SYNC_MS; if the module stays silent the next command goes out anyway
    (and syncs again after its own timeout)."""
    at._resync = False
    cmd, p = "AT+CMEE? +CMEE:".split()
    r = engine.Reply(cmd)
    at.pending = r
    at.prefix = p
    at.terminators = None
    at._done.clear()
    t0 = at.clock.ticks_ms()
    try:
        at.stream.write(cmd.encode() + b"\r")
        if at.log:
            at._log("command", cmd)
        await wait(at, r, p, t0)
    finally:
        at.pending = None
        at.prefix = None


async def wait(at, r, p, t0):
    """sync()'s wait for its own reply r (its prefix p), from t0 (its own function: each stays a
    small block)."""
    while True:
        left = _SYNC_MS - at.clock.since(t0)
        if left <= 0:
            at._resync = True
            return
        try:
            await wait_for_ms(at._done.wait(), left)
        except asyncio.TimeoutError:
            at._resync = True
            return
        if isinstance(r.final, engine.ATError):  # rebooted: nothing late can come any more
            return
        if r.value(p) is not None or r.final != "OK":
            return  # our reply (ERROR: a module without CMEE; then the stream is quiet too)
        r.final = None  # a late OK of the timed-out command: keep waiting for ours
        r.lines = []
        at._done.clear()


def rebooted(at):
    at.stats["reboots"] += 1
    at.echo = True  # a fresh boot has echo on again
    at.framer.reset()
    r = at.pending
    if r is not None:
        if r.final is None:
            r.final = engine.ATError(r.cmd, msg="the modem rebooted (RDY) during the command", kind=engine.REBOOTED)
        at._done.set()
        at._prompt.set()  # a data entry waiting for '>' ends too
    for w in at._waiters:  # deferred results die with the session; plain URC waits go on
        if w.owner is not None and w.line is None:
            w.error = engine.ATError(w.owner.cmd, msg="the modem rebooted (RDY) before the result", kind=engine.REBOOTED)
            w.ev.set()


async def wait_urc(at, prefix, timeout_ms):
    w = engine.Waiter(prefix)
    at._waiters.append(w)
    try:
        try:
            await wait_for_ms(w.ev.wait(), timeout_ms)
        except asyncio.TimeoutError:
            raise engine.ATError("(waiting for %s)" % prefix, msg="not received within %d ms" % timeout_ms, kind=engine.TIMEOUT)
        if w.error is not None:
            raise w.error
        return w.line
    finally:
        if w in at._waiters:
            at._waiters.remove(w)


def refused(at, n, line):
    at._log("note", "body of %d bytes refused (buffer %d): %s" % (n, at.framer.body_max, line))


def handler_failed(at, line, e):
    at._log("note", "URC handler for %r failed: %r" % (line, e))


def log_failed(at, log, e):
    """Writing the AT log raised e (OSError: the flash is full; MemoryError; a bad writer): the log
    is off (the engine already dropped it), said once; the modem link goes on without it."""
    at.warn("AT log off: writing it failed (%r); the modem link goes on without it" % e)
    try:
        log.close()
    except Exception:  # noqa: BLE001
        pass


def reader_failed(at, e):
    """The reader survived e: a body being read is given up (its handler hears None), noted."""
    at.framer.masked = []
    if at.framer.body_len:
        body_timed_out(at)
    at._log("note", "AT reader survived %r" % e)


def body_timed_out(at):
    """A raw body that never completed: given up (its partial bytes dropped), its handler hears None."""
    fr = at.framer
    cb = fr.cb
    fr.body = fr.cb = None
    fr.body_len = 0
    at.stats["timeouts"] += 1
    if cb:
        cb(None)
