# The AT-command engine: one reader task owns the modem's input stream; commands are sent one
# at a time under a lock and complete on a final result code; everything that belongs to no
# pending command is an unsolicited result code (URC) dispatched by prefix, also when it arrives
# in the middle of a reply. Deferred results (+CMQTTCONNECT: 0,<err>, +NETOPEN: <err>, ...) are
# awaited after the command's OK, whichever order the module sends them in.
#
# Nothing here sleeps in place of waiting for the modem: every wait is on a reply, bounded by a
# timeout, and every failure is an exception naming the command, the code and its meaning.
# The input side (reader task, URC dispatch) is at/reader.py; rare paths (resync after a timeout,
# results owed to cancelled callers, RDY, error decoding, the engine's own failures and their
# words) are at/recover.py, loaded when needed.
#
# Secrets: the engine knows which commands carry credentials (MQTT/APN user and password, the SIM
# PIN) and which data bodies are certificates or keys; they reach neither the AT log nor any
# exception text (ATError). Incoming bodies registered secret (MQTT payloads) are masked in the log.
#
# The transcript log (at.atlog.ATLog, RotatingFile) is a module of its own, imported only when
# debug.at_log is on; `from at.engine import ATLog` still works (module __getattr__), as do all of
# at.reader's names (`from at.engine import ATError, CME`).

import asyncio

from at import reader  # the module the engine's classes come from (see __getattr__)
from at.reader import ATError, ATReader, Reply, Waiter, response_prefix
from core.compat import const, sleep_ms, wait_for_ms

_CHUNK = const(256)  # data-entry write size: keeps the loop responsive during a 10 KB upload


def __getattr__(name):
    # at.reader's names (UNSOLICITED, ATError and its kinds; the redaction: at/redact.py) are
    # the engine's public names too, found there on use (a copy of each here would cost a global),
    # in the module this engine was built with (hwcheck may drop at.reader from sys.modules);
    # the transcript log lives in at/atlog.py (imported only when it is used)
    if name in ("ATLog", "RotatingFile"):
        from at import atlog

        return getattr(atlog, name)
    return getattr(reader, name)


class ATEngine(ATReader):
    """Commands on top of the reader: one at a time under a lock, complete on a final result
    code, deferred results awaited after it (see the header)."""

    # ATEngine(stream, clock=None, log=None, poll_ms=_POLL_MS, meaning=None): ATReader.__init__

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
            self._rare("revive")
        r = Reply(cmd)
        w = Waiter(result, r) if result is not None else None
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
                if w in self._waiters:
                    self._waiters.remove(w)
            raise box[0]
        if w is None:
            return r
        try:
            if w.line is None and w.error is None:
                try:
                    await wait_for_ms(w.ev.wait(), rt)
                except asyncio.TimeoutError:  # an ATError TIMEOUT, counted (its words: at/recover.py)
                    raise self._rare("failed", 0, cmd, w.prefix.strip(), rt)
                except BaseException:  # cancelled while the result is owed: the module is still busy
                    self._rare("keep_owed", w, rt)
                    w = None
                    raise
            if w.error is not None:
                raise w.error
            line = w.line
            if line is None:  # the event is set only with a line or an error
                raise self._rare("failed", 4, cmd, w.prefix.strip())
            r.result = line[len(w.prefix) :].strip()
            return r
        finally:
            if w is not None:
                if w in self._waiters:
                    self._waiters.remove(w)

    async def _run_exchange(self, state, r, cmd, timeout_ms, data, prompt_timeout_ms, terminators, waiter, timeout):
        # state: cmd()'s [error, done, abandoned]; waiter: the deferred result's (or None); timeout: its ms
        try:
            async with self._lock:
                if self._resync:
                    await self._rare("sync")
                if waiter is not None:
                    self._waiters.append(waiter)
                self.pending = r
                self.prefix = response_prefix(cmd)
                self.terminators = terminators
                self._done.clear()
                self._prompt.clear()
                self.framer.want_prompt = data is not None
                self.stats["cmds"] += 1
                try:
                    self.stream.write(cmd.encode() + b"\r")
                    if self.log:
                        self._log("command", cmd)
                    if data is not None:
                        ms = prompt_timeout_ms or timeout_ms
                        try:  # the prompt, or a final result instead of it (ERROR): both set _prompt
                            await wait_for_ms(self._prompt.wait(), ms)
                        except asyncio.TimeoutError:
                            self._resync = True  # a late reply must not complete the next command
                            raise self._rare("failed", 1, cmd, ms)
                        if r.final is None:
                            self.framer.echo = data  # its echo (ATE1) is skipped
                            mv = memoryview(data)
                            for i in range(0, len(mv), _CHUNK):
                                self.stream.write(mv[i : i + _CHUNK])
                                if len(mv) > _CHUNK:
                                    await sleep_ms(0)
                            if self.log:
                                self._log("data", cmd, data)
                        elif r.final == "OK" or (terminators and not isinstance(r.final, ATError) and r.final != "ERROR"):
                            # line noise forming 'OK' (or a stray late OK) before the prompt: the data was
                            # never written and the module may still be waiting for it. Success here would
                            # e.g. publish an empty payload; fail, and re-synchronise before the next command.
                            self._resync = True
                            raise self._rare("failed", 3, cmd, r.final)  # an ATError NO_PROMPT
                    if r.final is None:
                        try:
                            await wait_for_ms(self._done.wait(), timeout_ms)
                        except asyncio.TimeoutError:
                            self._resync = True
                            raise self._rare("failed", 2, cmd, timeout_ms)
                finally:
                    self.pending = None
                    self.prefix = None
                    self.framer.want_prompt = False
                    if self.log:
                        self._log("done")
                self.echo = r.echo
                f = r.final
                if isinstance(f, ATError):
                    raise f
                if f is not None and (f == "ERROR" or f.startswith("+CME ERROR:") or f.startswith("+CMS ERROR:")):
                    self.stats["errors"] += 1
                    raise self._rare("final_error", r, waiter)  # the error, its code and meaning (at/fail.py)
                # else OK, or a caller-given terminator: the command succeeded
        except Exception as e:  # handed to the caller: a task's own exception would go unretrieved
            state[0] = e
        if state[2] and waiter is not None:  # the caller is gone
            if state[0] is None:
                self._rare("keep_owed", waiter, timeout)
            else:
                self._rare("release_owed", waiter, state[0])  # not sent/refused: nothing is owed
        state[1].set()

    # -- results owed to callers that were cancelled ------------------------------------------
    def owed(self, prefix):
        """A deferred result starting with `prefix` that the module still owes to a cancelled
        caller (its waiter, whose .ev is set when the result or an error comes), or None."""
        for w in self._owed:
            if w.line is None and w.error is None and w.prefix.startswith(prefix):
                return w
        return None
