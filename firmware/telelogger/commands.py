# Authenticated remote commands on <prefix>/<id>/cmd (wire format: telelogger/FORMAT.md).
#
# Request: {"cmd": "ping|status|set_interval|flush|reboot", "args": {...}, "ts": unix s,
#           "nonce": "...", "n": counter, "mac": hex HMAC-SHA256(key, canonical(body without mac))}
# Reply:   {"ok": true, "cmd": ..., "nonce": ..., "result": {...}} or {"ok": false, "error": "..."},
#          with "mac" appended over the reply bytes that precede it.
# Anything malformed, unknown, unauthenticated or replayed gets an error reply and NO action.
#
# h = CommandHandler(key, clock, {"ping": async_fn, ...}, utc_ms=lambda: ms_or_None)
# reply = await h.handle(payload_bytes)
import json
from binascii import hexlify, unhexlify
from hashlib import sha256

from telelogger.store import PosixFS

# ---------------------------------------------------------------- HMAC-SHA256 (RFC 2104)

_BLOCK = 64


def hmac_sha256(key, msg):
    if isinstance(key, str):
        key = key.encode()
    if len(key) > _BLOCK:
        key = sha256(key).digest()
    k = bytearray(_BLOCK)
    k[: len(key)] = key
    pad = bytearray(_BLOCK)
    for i in range(_BLOCK):
        pad[i] = k[i] ^ 0x36
    h = sha256(pad)
    h.update(msg)
    inner = h.digest()
    for i in range(_BLOCK):
        pad[i] = k[i] ^ 0x5C
    h = sha256(pad)
    h.update(inner)
    return h.digest()


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


# ---------------------------------------------------------------- canonical JSON

_ESC = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}


def _canon_str(s, out):
    out.append('"')
    for ch in s:
        e = _ESC.get(ch)
        if e is not None:
            out.append(e)
            continue
        c = ord(ch)
        if c < 0x20 or c > 0x7E:
            if c > 0xFFFF:
                c -= 0x10000
                out.append("\\u%04x\\u%04x" % (0xD800 | (c >> 10), 0xDC00 | (c & 0x3FF)))
            else:
                out.append("\\u%04x" % c)
        else:
            out.append(ch)
    out.append('"')


def _canon(v, out):
    if v is None:
        out.append("null")
    elif v is True:
        out.append("true")
    elif v is False:
        out.append("false")
    elif isinstance(v, int):
        out.append(str(v))
    elif isinstance(v, str):
        _canon_str(v, out)
    elif isinstance(v, (list, tuple)):
        out.append("[")
        for i, x in enumerate(v):
            if i:
                out.append(",")
            _canon(x, out)
        out.append("]")
    elif isinstance(v, dict):
        out.append("{")
        first = True
        for k in sorted(v):
            if not isinstance(k, str):
                raise ValueError("object keys must be strings")
            if not first:
                out.append(",")
            first = False
            _canon_str(k, out)
            out.append(":")
            _canon(v[k], out)
        out.append("}")
    elif isinstance(v, float):
        raise ValueError("floats are not allowed in signed commands (use integers)")
    else:
        raise ValueError("cannot sign a %s" % type(v).__name__)


def canonical(body):
    """UTF-8-free canonical JSON bytes: keys sorted, no whitespace, non-ASCII as \\uXXXX, ints only."""
    out = []
    _canon(body, out)
    return "".join(out).encode()


def _body_of(d):
    b = {}
    for k in d:
        if k != "mac":
            b[k] = d[k]
    return b


def sign(key, body):
    """Sender side: body dict (cmd, args, ts, nonce and/or n) -> payload bytes with "mac"."""
    d = _body_of(body)
    d["mac"] = hmac_hex(key, canonical(d))
    return json.dumps(d).encode()


def verify_reply(key, payload):
    """Sender side: checks a reply's mac; returns the reply dict or raises ValueError."""
    if isinstance(payload, str):
        payload = payload.encode()
    i = payload.rfind(b',"mac":"')
    if i < 0 or not payload.endswith(b'"}'):
        raise ValueError("reply without mac")
    signed = payload[:i] + b"}"
    mac = payload[i + 8 : -2]
    if not equal_ct(mac, hmac_hex(key, signed).encode()):
        raise ValueError("reply mac mismatch")
    return json.loads(payload)


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
MAX_NONCE = 64


class CommandError(Exception):
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
            if not isinstance(v, int) or isinstance(v, bool) or v < lo or v > hi:
                raise CommandError("args.%s: expected an integer between %d and %d, got %s" % (k, lo, hi, json.dumps(v)))
            out[k] = v
        elif t == "target":
            out[k] = _check_target(v)
        elif t == "str":
            if not isinstance(v, str) or len(v) > hi:
                raise CommandError("args.%s: expected a string" % k)
            out[k] = v
    return out


# ---------------------------------------------------------------- handler


class CommandHandler:
    """key: HMAC key (str or bytes, non-empty). clock: core.compat.Clock (kept for handlers'
    use). handlers: {cmd: async fn(args) -> result dict}. utc_ms: callable -> current UTC ms or
    None while unknown. window_s: allowed |ts - now| when UTC is known. nonces: how many recent
    nonces are remembered. counter_path: file that persists the last accepted counter "n"
    (without it the counter restarts at 0 on every boot)."""

    def __init__(self, key, clock, handlers, utc_ms=None, window_s=300, nonces=32, counter_path=None, fs=None, schemas=None):
        if not key:
            raise ValueError("CommandHandler needs a non-empty HMAC key")
        self.key = key.encode() if isinstance(key, str) else bytes(key)
        self.clock = clock
        self.handlers = handlers
        self.utc_ms = utc_ms
        self.window_ms = window_s * 1000
        self.max_nonces = nonces
        self.schemas = schemas or SCHEMAS
        self.fs = fs or PosixFS()  # used only with a counter_path
        self.counter_path = counter_path
        self._nonces = []  # [(ts, nonce)] oldest first
        self._floor_ts = None  # ts of the newest evicted nonce: older commands are refused
        self.last_n = self._load_counter()
        self.stats = {"accepted": 0, "rejected": 0, "last_error": None}

    # -------------------------------------------------- counter persistence
    def _load_counter(self):
        if not self.counter_path:
            return 0
        try:
            with self.fs.open(self.counter_path, "rb") as f:
                return int(f.read().strip() or b"0")
        except (OSError, ValueError):
            return 0

    def _save_counter(self):
        if not self.counter_path:
            return
        tmp = self.counter_path + ".tmp"
        with self.fs.open(tmp, "wb") as f:
            f.write(str(self.last_n).encode())
            f.flush()
        self.fs.rename(tmp, self.counter_path)

    # -------------------------------------------------- checking
    def check(self, payload):
        """-> (cmd, args, reply_fields) for an acceptable command; raises CommandError.
        Records the nonce / counter (so a second call with the same payload is a replay)."""
        try:
            if isinstance(payload, (bytes, bytearray, memoryview)):
                payload = bytes(payload).decode()
            d = json.loads(payload)
        except (ValueError, UnicodeError):
            raise CommandError("bad JSON")
        if not isinstance(d, dict):
            raise CommandError("bad JSON: expected an object")
        mac = d.get("mac")
        if not isinstance(mac, str) or len(mac) != 64:
            raise CommandError("missing or malformed mac")
        try:
            want = unhexlify(mac)
        except ValueError:
            raise CommandError("missing or malformed mac")
        try:
            body = canonical(_body_of(d))
        except ValueError as e:
            raise CommandError("cannot authenticate: %s" % e)
        if not equal_ct(hmac_sha256(self.key, body), want):
            raise CommandError("bad mac")
        # authenticated from here on
        cmd = d.get("cmd")
        if not isinstance(cmd, str) or cmd not in self.schemas:
            raise CommandError("unknown cmd %s" % json.dumps(cmd))
        if cmd not in self.handlers:
            raise CommandError("cmd %s not supported by this device" % cmd)
        args = d.get("args", {})
        if not isinstance(args, dict):
            raise CommandError("args: expected an object")
        for k in d:
            if k not in ("cmd", "args", "ts", "nonce", "n", "mac"):
                raise CommandError("unknown member %s" % json.dumps(k))
        args = check_args(cmd, args, self.schemas)
        ts, nonce, n = self._check_fresh(d)
        # accepted: remember it
        if nonce is not None and ts is not None:
            self._remember(ts, nonce)
        if n is not None:
            self.last_n = n
            self._save_counter()
        fields = {}  # str -> reply value (str, int, bool, dict)
        fields["cmd"] = cmd
        if nonce is not None:
            fields["nonce"] = nonce
        if n is not None:
            fields["n"] = n
        return cmd, args, fields

    def _check_fresh(self, d):
        ts = d.get("ts")
        nonce = d.get("nonce")
        n = d.get("n")
        if ts is not None and (not isinstance(ts, int) or isinstance(ts, bool)):
            raise CommandError("ts: expected unix seconds (integer)")
        if nonce is not None and (not isinstance(nonce, str) or not 0 < len(nonce) <= MAX_NONCE):
            raise CommandError("nonce: expected a string of 1..%d characters" % MAX_NONCE)
        if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 1):
            raise CommandError("n: expected a positive integer")
        now = self.utc_ms() if self.utc_ms else None
        if now is not None:
            if ts is None or nonce is None:
                raise CommandError("ts and nonce required")
            if abs(ts * 1000 - now) > self.window_ms:
                raise CommandError("stale: ts %d is %d s away from device time (window %d s)" % (ts, (ts * 1000 - now) // 1000, self.window_ms // 1000))
            if self._floor_ts is not None and ts <= self._floor_ts:
                raise CommandError("stale: older than the remembered nonces")
            for _t, x in self._nonces:
                if x == nonce:
                    raise CommandError("replay: nonce already used")
        elif n is None:
            raise CommandError("device has no UTC time yet: counter n required")
        if n is not None and n <= self.last_n:
            raise CommandError("replay: n %d not above last %d" % (n, self.last_n))
        return ts, nonce, n

    def _remember(self, ts, nonce):
        self._nonces.append((ts, nonce))
        if len(self._nonces) > self.max_nonces:
            t, _ = self._nonces.pop(0)
            if self._floor_ts is None or t > self._floor_ts:
                self._floor_ts = t

    # -------------------------------------------------- replies
    def _reply(self, d):
        r = json.dumps(d).encode()
        return r[:-1] + (',"mac":"%s"}' % hmac_hex(self.key, r)).encode()

    def _error(self, msg):
        self.stats["rejected"] += 1
        self.stats["last_error"] = msg
        return self._reply({"ok": False, "error": msg})

    async def handle(self, payload):
        """Payload bytes of a cmd message -> reply bytes (publish them on <prefix>/<id>/reply)."""
        try:
            cmd, args, fields = self.check(payload)
        except CommandError as e:
            return self._error(str(e))
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
            return self._error("%s: result not JSON-serialisable (%s)" % (cmd, e))
