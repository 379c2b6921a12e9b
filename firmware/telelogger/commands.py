# Authenticated remote commands on <prefix>/<id>/cmd. The wire format, with a worked example, is
# telelogger/FORMAT.md "Remote commands": a signer needs nothing else (scripts/cmdsign.py is one).
#
# payload = BODY without its final "}" + ',"mac":"' + MAC + '"}', MAC = lowercase hex
# HMAC-SHA256(key, "fm-cmd-v2\n" + device_id + "\n" + "req" + "\n" + BODY); replies the same with
# "rep". The MAC is checked over the bytes as received, before anything is parsed; then BODY (ASCII
# JSON) {"cmd", "args"?, "n", "ts"?, "chal"?, "nonce"?}: n above the persisted last one, and ts
# within the window of UTC or, while the device has no UTC, this boot's challenge "chal".
# Anything malformed, unknown, unauthenticated, stale or replayed gets an error reply and NO action.
#
# h = CommandHandler(key, clock, {"ping": async_fn, ...}, utc_ms=fn, device_id="ABC", counter_path=p)
# reply = await h.handle(payload_bytes)
import json
from binascii import hexlify, unhexlify
from hashlib import sha256

DOMAIN = b"fm-cmd-v2\n"
REQ = b"req"
REP = b"rep"
_TAIL = b',"mac":"'  # the payload ends with _TAIL + 64 lowercase hex digits + '"}'
TAIL_LEN = 74
MAX_PAYLOAD = 1024  # bytes of a request payload (mac included)
MAX_NEST = 8  # '{' plus '[' characters in a request body (a command needs 2)
MAX_N = 9007199254740991  # 2**53 - 1: n fits a double, for signers in any language
MAX_NONCE = 64
MEMBERS = ("cmd", "args", "n", "ts", "chal", "nonce")

# ---------------------------------------------------------------- HMAC-SHA256 (RFC 2104)


def _pads(key):
    """(inner, outer) HMAC pads of `key` (str: its UTF-8 bytes), computed once per key."""
    if isinstance(key, str):
        key = key.encode()
    if len(key) > 64:
        key = sha256(key).digest()
    i = bytearray(64)
    o = bytearray(64)
    for j in range(64):
        c = key[j] if j < len(key) else 0
        i[j] = c ^ 0x36
        o[j] = c ^ 0x5C
    return bytes(i), bytes(o)


def _hmac(pads, *parts):
    h = sha256(pads[0])
    for p in parts:
        h.update(p)
    h = sha256(pads[1] + h.digest())
    return h.digest()


def hmac_sha256(key, msg):
    return _hmac(_pads(key), msg)


def hmac_hex(key, msg):
    return hexlify(hmac_sha256(key, msg)).decode()


def equal_ct(a, b):
    """Constant-time comparison of two byte strings."""
    if len(a) != len(b):
        return False
    r = 0
    for i in range(len(a)):
        r |= a[i] ^ b[i]
    return r == 0


# ---------------------------------------------------------------- envelope (both directions)


def prefix(device_id, direction):
    """What the MAC covers before the body: domain, device id, direction (REQ or REP)."""
    if not isinstance(device_id, str) or not device_id or "\n" in device_id:
        raise ValueError("device_id: expected a non-empty string without newlines, got %r" % (device_id,))
    return DOMAIN + device_id.encode() + b"\n" + direction + b"\n"


def seal(pads, pre, body):
    """body: JSON object bytes ending in '}' -> payload with the mac as its last member."""
    if body[-1:] != b"}":
        raise ValueError("a body is a JSON object text ending in }")
    return body[:-1] + _TAIL + hexlify(_hmac(pads, pre, body)) + b'"}'


def split(payload, cap=MAX_PAYLOAD):
    """-> (signed body bytes, mac hex bytes) of a payload shaped like a sealed one; raises
    CommandError saying what is wrong. Only length checks and slicing: nothing is parsed."""
    if isinstance(payload, str):
        payload = payload.encode()
    n = len(payload)
    if cap is not None and n > cap:
        raise CommandError("payload of %d bytes: at most %d" % (n, cap))
    payload = bytes(payload)
    if n < TAIL_LEN + 2 or payload[n - TAIL_LEN : n - 66] != _TAIL or payload[n - 2 :] != b'"}':
        raise CommandError('no mac: a payload ends with ,"mac":"<64 hex digits>"} (FORMAT.md)')
    mac = payload[n - 66 : n - 2]
    try:
        unhexlify(mac)
    except ValueError:
        raise CommandError("malformed mac: expected 64 hex digits")
    return payload[: n - TAIL_LEN] + b"}", mac


def verify(pads, pre, body, mac):
    if not equal_ct(hexlify(_hmac(pads, pre, body)), mac):
        raise CommandError("bad mac")  # wrong key, another device, the other direction, altered bytes


def sign(key, body, device_id):
    """Sender side: body dict (cmd, args, n, ts and/or chal, nonce) -> request payload for
    `device_id`. Any JSON text works; scripts/cmdsign.py writes the canonical one (FORMAT.md)."""
    b = json.dumps(body).encode()
    if len(b) != len(b.decode()):
        raise ValueError("a request body is ASCII: write non-ASCII characters as \\u escapes")
    return seal(_pads(key), prefix(device_id, REQ), b)


def verify_reply(key, payload, device_id):
    """Sender side: the reply dict of an authentic reply from `device_id`; raises ValueError."""
    pads = _pads(key)
    body, mac = split(payload, None)
    verify(pads, prefix(device_id, REP), body, mac)
    return json.loads(body)


# ---------------------------------------------------------------- argument schemas (data)

INTERVAL_TARGETS = ("intervals.battery_ms", "intervals.signal_ms", "intervals.status_ms", "gnss.interval_ms", "batch.max_age_ms")
# cmd -> {arg: (type, lo, hi, required)}; "target" is a dotted config key (see INTERVAL_TARGETS or obd.pids.XX)
SCHEMAS = {
    "ping": {},
    "status": {},
    "set_interval": {"target": ("target", None, None, True), "ms": ("int", 100, 86400000, True)},
    "flush": {},
    "reboot": {"delay_ms": ("int", 0, 60000, False)},
}


class CommandError(ValueError):
    pass


def _check_target(v):
    if not isinstance(v, str):
        raise CommandError("args.target: expected a string")
    if v in INTERVAL_TARGETS:
        return v
    if v.startswith("obd.pids.") and len(v) == 11:
        try:
            pid = int(v[9:], 16)
        except ValueError:
            pid = 0
        if 1 <= pid <= 0xFF:
            return "obd.pids." + v[9:].upper()
    raise CommandError("args.target: expected obd.pids.<PID hex> or one of %s, got %s" % ("|".join(INTERVAL_TARGETS), json.dumps(v)))


def _int(v, lo, hi):
    return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def check_args(cmd, args, schemas=SCHEMAS):
    schema = schemas[cmd]
    if schema is None:  # free-form handler
        return args
    out = {}
    for k in args:
        if k not in schema:
            raise CommandError("args.%s: unknown argument for %s" % (k, cmd))
    for k in schema:
        t, lo, hi, req = schema[k]
        if k not in args:
            if req:
                raise CommandError("args.%s: required for %s" % (k, cmd))
            continue
        v = args[k]
        if t == "int":
            if not _int(v, lo, hi):
                raise CommandError("args.%s: expected an integer between %d and %d, got %s" % (k, lo, hi, json.dumps(v)))
            out[k] = v
        elif t == "target":
            out[k] = _check_target(v)
        elif t == "str":
            if not isinstance(v, str) or len(v) > hi:
                raise CommandError("args.%s: expected a string" % k)
            out[k] = v
    return out


def parse_body(body):
    """Authentic body bytes -> dict, bounded: ASCII, at most MAX_NEST objects/arrays."""
    if body.count(b"{") + body.count(b"[") > MAX_NEST:
        raise CommandError("body: more than %d '{' or '[' (nested too deeply)" % MAX_NEST)
    try:
        s = body.decode()
    except UnicodeError:
        s = ""
    if len(s) != len(body):
        raise CommandError("body: not ASCII (write other characters as \\u escapes)")
    try:
        d = json.loads(s)
    except (ValueError, RuntimeError):  # RuntimeError: a parser's recursion limit
        raise CommandError("body: bad JSON")
    if not isinstance(d, dict):
        raise CommandError("body: expected a JSON object")
    return d


# ---------------------------------------------------------------- handler

COUNTER_HELP = "every command is refused until a counter is provisioned with deploy (FORMAT.md)"


class CommandHandler:
    """key: HMAC key (str or bytes, non-empty; per device, FORMAT.md). clock: core.compat.Clock (or
    None: the real one). handlers: {cmd: async fn(args) -> result dict}. utc_ms: callable -> UTC ms
    or None while unknown. device_id: this device's id (the MAC binds it). window_s: allowed
    |ts - UTC|, and how long a challenge stays valid before UTC is known. counter_path: file that
    persists the last accepted n (tmp + rename); without one it lives in RAM only (tests). fs: the
    os subset it uses (open, rename, optional sync(f)); default store.PosixFS. nonces: unused since
    n is persisted (kept for callers passing commands.nonces)."""

    def __init__(self, key, clock, handlers, utc_ms=None, window_s=300, nonces=None, counter_path=None, fs=None,
                 schemas=None, device_id=None):
        if not key:
            raise ValueError("CommandHandler needs a non-empty HMAC key")
        self._pads = _pads(key)
        self._req = prefix(device_id, REQ)
        self._rep = prefix(device_id, REP)
        if clock is None:
            from core.compat import Clock

            clock = Clock()
        self.clock = clock
        self.handlers = handlers
        self.utc_ms = utc_ms
        self.window_ms = window_s * 1000
        self.schemas = schemas or SCHEMAS
        if counter_path and fs is None:
            from telelogger.store import PosixFS

            fs = PosixFS()
        self.fs = fs
        self.counter_path = counter_path
        self.stats = {"accepted": 0, "rejected": 0, "last_error": None, "counter_error": None}
        self.last_n = self._load_counter()
        self._chal = None  # (token, ticks_ms when issued) while UTC is unknown
        self._re = None  # the request's mac (first 16 hex digits), echoed in its reply

    # -------------------------------------------------- counter persistence (fail closed)
    def _load_counter(self):
        if not self.counter_path:
            return 0
        try:
            f = self.fs.open(self.counter_path, "rb")
        except OSError as e:
            if e.args and e.args[0] == 2:  # ENOENT: never written, a new device (FORMAT.md)
                return 0
            return self._broken(e)
        try:
            raw = f.read().strip()
        except OSError as e:
            return self._broken(e)
        finally:
            f.close()
        if not raw.isdigit() or len(raw) > 16 or int(raw) > MAX_N:
            return self._broken("content %r is not a counter" % raw[:20])
        return int(raw)

    def _broken(self, why):
        self.stats["counter_error"] = "command counter unreadable (%s: %s): %s" % (self.counter_path, why, COUNTER_HELP)
        return MAX_N

    def _save_counter(self, n):
        if not self.counter_path:
            return
        tmp = self.counter_path + ".tmp"
        f = self.fs.open(tmp, "wb")
        try:
            f.write(("%d\n" % n).encode())
            if hasattr(self.fs, "sync"):
                self.fs.sync(f)
            else:
                f.flush()
        finally:
            f.close()
        self.fs.rename(tmp, self.counter_path)  # atomic: the old counter or the new one, never none

    # -------------------------------------------------- freshness
    def _now(self):
        return self.utc_ms() if self.utc_ms else None

    def challenge(self):
        """This boot's freshness token for commands before UTC is known; renewed once it is
        older than the window. Not secret: every reply carries it while UTC is unknown."""
        t = self.clock.ticks_ms()
        c = self._chal
        if c is None or self.clock.diff(t, c[1]) > self.window_ms:
            from os import urandom

            c = self._chal = (hexlify(urandom(8)).decode(), t)
        return c[0]

    def _check_fresh(self, n, ts, chal):
        now = self._now()
        if now is not None:
            if ts is None:
                raise CommandError("ts required: the device knows UTC")
            if abs(ts * 1000 - now) > self.window_ms:
                raise CommandError("stale: ts %d is %d s away from device time (window %d s)" % (ts, (ts * 1000 - now) // 1000, self.window_ms // 1000))
        else:
            c = self._chal
            if chal is None or c is None or chal != c[0] or self.clock.diff(self.clock.ticks_ms(), c[1]) > self.window_ms:
                raise CommandError("device has no UTC time yet: sign again with this reply's chal (valid %d s)" % (self.window_ms // 1000))
        if n <= self.last_n:
            raise CommandError("replay: n %d not above last %d" % (n, self.last_n))

    # -------------------------------------------------- checking
    def check(self, payload):
        """-> (cmd, args, reply_fields) for an acceptable command; raises CommandError.
        Persists n first (so a second call with the same payload is a replay)."""
        self._re = None
        body, mac = split(payload)
        self._re = mac[:16].decode()
        verify(self._pads, self._req, body, mac)
        # authentic from here on
        if self.stats["counter_error"]:
            raise CommandError(self.stats["counter_error"])
        d = parse_body(body)
        for k in d:
            if k not in MEMBERS:
                raise CommandError("unknown member %s" % json.dumps(k))
        cmd = d.get("cmd")
        if not isinstance(cmd, str) or cmd not in self.schemas:
            raise CommandError("unknown cmd %s" % json.dumps(cmd))
        if cmd not in self.handlers:
            raise CommandError("cmd %s not supported by this device" % cmd)
        n, ts, chal, nonce = d.get("n"), d.get("ts"), d.get("chal"), d.get("nonce")
        if not _int(n, 1, MAX_N):
            raise CommandError("n: expected an integer 1..%d above the last accepted one" % MAX_N)
        if ts is not None and not _int(ts, 0, 1 << 40):
            raise CommandError("ts: expected unix seconds (integer)")
        if chal is not None and not isinstance(chal, str):
            raise CommandError("chal: expected the string of a reply")
        if nonce is not None and (not isinstance(nonce, str) or not 0 < len(nonce) <= MAX_NONCE):
            raise CommandError("nonce: expected a string of 1..%d characters" % MAX_NONCE)
        args = d.get("args", {})
        if not isinstance(args, dict):
            raise CommandError("args: expected an object")
        args = check_args(cmd, args, self.schemas)
        self._check_fresh(n, ts, chal)
        try:
            self._save_counter(n)
        except OSError as e:
            raise CommandError("cannot store the command counter (%s): not run" % e)
        self.last_n = n
        fields = {"cmd": cmd, "n": n}
        if nonce is not None:
            fields["nonce"] = nonce
        return cmd, args, fields

    # -------------------------------------------------- replies
    def _reply(self, d):
        if self._re:
            d["re"] = self._re
        if self._now() is None:
            d["chal"] = self.challenge()
        return seal(self._pads, self._rep, json.dumps(d).encode())

    def _error(self, msg):
        self.stats["rejected"] += 1
        self.stats["last_error"] = msg
        return self._reply({"ok": False, "error": msg})

    async def handle(self, payload):
        """Payload bytes of a cmd message -> reply bytes (publish them on <prefix>/<id>/reply)."""
        try:
            cmd, args, fields = self.check(payload)
        except CommandError as e:
            return self._error(str(e.args[0]))
        try:
            result = await self.handlers[cmd](args)
        except Exception as e:  # the handler failed: say so, keep running
            return self._error("%s failed: %s" % (cmd, e))
        self.stats["accepted"] += 1
        fields["ok"] = True
        fields["result"] = result if result is not None else {}
        try:
            return self._reply(fields)
        except (TypeError, ValueError) as e:
            fields.pop("result")
            return self._error("%s: result not JSON-serialisable (%s)" % (cmd, e))
