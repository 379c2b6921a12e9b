# Authenticated remote commands on <prefix>/<id>/cmd, replies on <prefix>/<id>/reply. The wire
# format, with a worked example, is telelogger/FORMAT.md "Remote commands" (a signer needs nothing
# else; scripts/cmdsign.py is one). Resident part: the envelope is checked and the MAC verified
# over the bytes as received (cmdseal.py) before anything is parsed; only then is cmdcheck.py
# loaded, for the body, the arguments and freshness, and dropped again.
# Anything malformed, unknown, unauthenticated, stale or replayed gets an error reply and NO action.
#
# h = CommandHandler(key, clock, {"ping": async_fn, ...}, utc_ms=fn, device_id="ABC", counter_path=p)
# reply = await h.handle(payload_bytes)
import json

from telelogger.cmdseal import REP, REQ, CommandError, pads, prefix, seal, split, verify
from telelogger.tasks import unload


class CommandHandler:
    """key: HMAC key (str or bytes, non-empty; one per device, FORMAT.md). clock: core.compat.Clock
    (None: the real one). handlers: {cmd: async fn(args) -> result dict}. utc_ms: callable -> UTC
    ms or None while unknown. device_id: this device's id (the MAC binds it). window_s: allowed
    |ts - UTC|, and how long a challenge stays valid before UTC is known. counter_path: file that
    persists the last accepted n; without one it lives in RAM only (tests). fs: the os subset
    used for it (open, rename, optional sync(f)); default store.PosixFS. schemas: argument schemas
    (default cmdcheck.SCHEMAS). nonces: unused since n is persisted (accepted for old callers).
    stats: accepted (authentic and fresh: run), failed (of those, the handler raised: the reply says
    why, with the command's n; not rate-limited, unlike rejected), rejected, last_error,
    counter_error (None, or why every command is refused)."""

    def __init__(self, key, clock, handlers, utc_ms=None, window_s=300, nonces=None, counter_path=None, fs=None,
                 schemas=None, device_id=None):
        if not key:
            raise ValueError("CommandHandler needs a non-empty HMAC key")
        self._pads = pads(key)
        self._req = prefix(device_id, REQ)
        self._rep = prefix(device_id, REP)
        if clock is None:
            from core.compat import Clock

            clock = Clock()
        self.clock = clock
        self.handlers = handlers
        self.utc_ms = utc_ms
        self.window_ms = window_s * 1000
        self.schemas = schemas
        if counter_path and fs is None:
            from telelogger.store import PosixFS

            fs = PosixFS()
        self.fs = fs
        self.counter_path = counter_path
        self.chal = None  # (token, ticks_ms when issued): freshness before UTC is known
        self._re = None  # the request's mac (first 16 hex digits), echoed in its reply
        from telelogger import cmdcheck

        try:
            self.last_n, err = cmdcheck.load_counter(self)
        finally:
            unload("cmdcheck")
        self.stats = {"accepted": 0, "rejected": 0, "failed": 0, "last_error": None, "counter_error": err}

    def now_utc(self):
        return self.utc_ms() if self.utc_ms else None

    def challenge(self):
        """This boot's freshness token for commands before UTC is known, renewed once older than
        the window. Not secret: every reply carries it while UTC is unknown."""
        t = self.clock.ticks_ms()
        c = self.chal
        if c is None or self.clock.diff(t, c[1]) > self.window_ms:
            from binascii import hexlify
            from os import urandom

            c = self.chal = (hexlify(urandom(8)).decode(), t)
        return c[0]

    def _reply(self, d):
        if self._re:
            d["re"] = self._re
        if self.now_utc() is None:
            d["chal"] = self.challenge()
        return seal(self._pads, self._rep, json.dumps(d).encode())

    def _error(self, msg):
        self.stats["rejected"] += 1
        self.stats["last_error"] = msg
        return self._reply({"ok": False, "error": msg})

    async def handle(self, payload):
        """Payload bytes of a cmd message -> reply bytes (publish them on <prefix>/<id>/reply). (In
        steps: each function's bytecode is one allocation, on a heap that has more room in small pieces.)"""
        self._re = None
        try:
            cmd, args, fields = self.check(payload)
        except CommandError as e:
            return self._error(str(e))
        self.stats["accepted"] += 1
        try:
            result = await self.handlers[cmd](args)
        except Exception as e:  # authentic, but it failed (or refused a value): say why, keep running
            return self.failed(cmd, fields, e)
        fields["ok"] = True
        fields["result"] = result if result is not None else {}
        try:
            return self._reply(fields)
        except (TypeError, ValueError) as e:
            fields.pop("result")
            return self._error("%s: result not JSON-serialisable (%s)" % (cmd, e))

    # (the step helpers here bear names the firmware interns anyway: a new name would stay in RAM for good)
    def check(self, payload):
        """The MAC checked, then the body (cmdcheck.py, loaded for it) -> (cmd, args, reply fields);
        raises CommandError."""
        body, mac = split(payload)
        self._re = mac[:16].decode()
        verify(self._pads, self._req, body, mac)
        # authentic from here on
        from telelogger import cmdcheck

        try:
            return cmdcheck.check(self, body)
        finally:
            unload("cmdcheck")

    def failed(self, cmd, fields, e):
        """The reply of an authentic command whose handler raised e."""
        self.stats["failed"] += 1
        fields["ok"] = False
        fields["error"] = "%s failed: %s" % (cmd, e)
        for a in ("key", "expected"):  # a refused config value (ConfigError) names both
            if getattr(e, a, None) is not None:
                fields[a] = getattr(e, a)
        return self._reply(fields)
