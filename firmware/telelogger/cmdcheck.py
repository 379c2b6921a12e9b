# What an authentic command must also pass (telelogger/FORMAT.md "Remote commands"): a bounded
# ASCII JSON body, known members, a known command with valid arguments, and freshness (n above
# the persisted last one; ts within the window of UTC, or this boot's challenge before UTC is
# known), with the counter stored before the command runs. commands.CommandHandler imports this
# module only after a MAC matched, and drops it again (telelogger.tasks.unload).
import json

from core.compat import const
from telelogger.cmdseal import CommandError

_MAX_NEST = const(8)  # '{' plus '[' characters in a request body (a command needs 2)
MAX_N = 9007199254740991  # 2**53 - 1: n fits a double, for signers in any language
_MAX_NONCE = const(64)
_MEMBERS = const(("cmd", "args", "n", "ts", "chal", "nonce"))
_COUNTER_HELP = const("every command is refused until deploy provisions the counter file (FORMAT.md)")

INTERVAL_TARGETS = ("intervals.battery_ms", "intervals.signal_ms", "intervals.status_ms", "gnss.interval_ms", "batch.max_age_ms")
# cmd -> {arg: (type, lo, hi, required)}; "target" is a dotted config key (see INTERVAL_TARGETS or obd.pids.XX);
# "str": lo..hi characters; "obj": an object of lo..hi members; "bool": true or false
SCHEMAS = {
    "ping": {},
    "status": {},
    "set_interval": {"target": ("target", None, None, True), "ms": ("int", 100, 86400000, True)},
    "flush": {},
    "reboot": {"delay_ms": ("int", 0, 60000, False)},
    # remote configuration (telelogger/cfgcmd.py) and the vehicle's codes (telelogger/vehicle.py)
    "config_get": {"key": ("str", 1, 64, False)},
    "config_set": {"set": ("obj", 1, 8, True)},
    "dtc_read": {},
    "dtc_clear": {"confirm": ("bool", None, None, False)},
    # OTA updates (telelogger/otacmd.py, FORMAT.md "OTA updates"); mac: the manifest's MAC (otacmd checks its form)
    "ota_begin": {"version": ("int", 1, 2147483647, True), "size": ("int", 1, 65536, True),
                  "total": ("int", 1, 4194304, True), "files": ("int", 1, 1000, True),
                  "chunk": ("int", 256, 1536, True), "mac": ("str", None, 64, True), "rollback": ("int", 0, 1, False)},
    "ota_status": {}, "ota_commit": {}, "ota_abort": {},
}


def _int(v, lo, hi):
    return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


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
        if k not in args:
            if schema[k][3]:  # required
                raise CommandError("args.%s: required for %s" % (k, cmd))
            continue
        if schema[k][0] in ("int", "target", "str", "bool", "obj"):  # (a schema entry of another type: left out)
            out[k] = value(k, schema[k], args[k])
    return out


# (the step helpers here bear names the firmware interns anyway: a new name would stay in RAM for good)
def value(k, spec, v):
    """One argument's value checked against its schema entry (type, lo, hi, required) -> the value
    (a target normalised). A function of its own: each one's bytecode is one allocation."""
    t, lo, hi, _ = spec
    if t == "int":
        if not _int(v, lo, hi):
            raise CommandError("args.%s: expected an integer between %d and %d, got %s" % (k, lo, hi, json.dumps(v)))
    elif t == "target":
        return _check_target(v)
    elif t == "str":
        lo = lo or 0
        if not isinstance(v, str) or not lo <= len(v) <= hi:
            raise CommandError("args.%s: expected a string of %d..%d characters" % (k, lo, hi))
    elif t == "bool":
        if not isinstance(v, bool):
            raise CommandError("args.%s: expected true or false, got %s" % (k, json.dumps(v)))
    elif t == "obj":
        if not isinstance(v, dict) or not lo <= len(v) <= hi:
            raise CommandError("args.%s: expected an object of %d..%d members" % (k, lo, hi))
    return v


def parse_body(body):
    """Authentic body bytes -> dict, bounded: ASCII, at most _MAX_NEST objects/arrays."""
    if body.count(b"{") + body.count(b"[") > _MAX_NEST:
        raise CommandError("body: more than %d '{' or '[' (nested too deeply)" % _MAX_NEST)
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


# ---------------------------------------------------------------- the counter file (fail closed)


def load_counter(h):
    """-> (last n, None) or (MAX_N, why it is unreadable). A missing file is a new device (0)."""
    path = h.counter_path
    if not path:
        return 0, None
    try:
        f = h.fs.open(path, "rb")
    except OSError as e:
        if e.args and e.args[0] == 2:  # ENOENT: never written
            return 0, None
        return _broken(path, e)
    try:
        raw = f.read().strip()
    except OSError as e:
        return _broken(path, e)
    finally:
        f.close()
    if not raw.isdigit() or len(raw) > 16 or int(raw) > MAX_N:
        return _broken(path, "content %r is not a counter" % raw[:20])
    return int(raw), None


def _broken(path, why):
    return MAX_N, "command counter unreadable (%s: %s): %s" % (path, why, _COUNTER_HELP)


def save_counter(h, n):
    """Writes n to a temporary file, syncs it, renames it over the counter (atomic on LittleFS and
    POSIX: the old counter or the new one survives a power cut, never none)."""
    path = h.counter_path
    if not path:
        return
    tmp = path + ".tmp"
    f = h.fs.open(tmp, "wb")
    try:
        f.write(("%d\n" % n).encode())
        if hasattr(h.fs, "sync"):
            h.fs.sync(f)
        else:
            f.flush()
    finally:
        f.close()
    h.fs.rename(tmp, path)


# ---------------------------------------------------------------- one authentic command


def _fresh(h, n, ts, chal):
    now = h.now_utc()
    w = h.window_ms
    if now is not None:
        if ts is None:
            raise CommandError("ts required: the device knows UTC")
        if abs(ts * 1000 - now) > w:
            raise CommandError("stale: ts %d is %d s away from device time (window %d s)" % (ts, (ts * 1000 - now) // 1000, w // 1000))
    else:
        c = h.chal
        if chal is None or c is None or chal != c[0] or h.clock.diff(h.clock.ticks_ms(), c[1]) > w:
            raise CommandError("device has no UTC time yet: sign again with this reply's chal (valid %d s)" % (w // 1000))
    if n <= h.last_n:
        raise CommandError("replay: n %d not above last %d" % (n, h.last_n))


def check(h, body):
    """Authentic body bytes -> (cmd, args, reply fields); raises CommandError. Stores n before
    returning (so the same payload again is a replay), or refuses if it cannot. (In steps: each
    function's bytecode is one allocation, on a heap that has more room in small pieces.)"""
    if h.stats["counter_error"]:
        raise CommandError(h.stats["counter_error"])
    d = parse_body(body)
    cmd, schemas = command(h, d)
    n, ts, chal, nonce = _fields(d)
    args = d.get("args", {})
    if not isinstance(args, dict):
        raise CommandError("args: expected an object")
    args = check_args(cmd, args, schemas)
    _fresh(h, n, ts, chal)
    try:
        save_counter(h, n)
    except OSError as e:
        raise CommandError("cannot store the command counter (%s): not run" % e)
    h.last_n = n
    fields = {"cmd": cmd, "n": n}
    if nonce is not None:
        fields["nonce"] = nonce
    return cmd, args, fields


def command(h, d):
    """check's first step: known members, a known command this device supports -> (cmd, schemas)."""
    for k in d:
        if k not in _MEMBERS:
            raise CommandError("unknown member %s" % json.dumps(k))
    cmd = d.get("cmd")
    schemas = h.schemas or SCHEMAS
    if not isinstance(cmd, str) or cmd not in schemas:
        raise CommandError("unknown cmd %s" % json.dumps(cmd))
    if cmd not in h.handlers:
        raise CommandError("cmd %s not supported by this device" % cmd)
    return cmd, schemas


def _fields(d):
    """check's second step: the forms of n, ts, chal and nonce -> (n, ts, chal, nonce)."""
    n, ts, chal, nonce = d.get("n"), d.get("ts"), d.get("chal"), d.get("nonce")
    if not _int(n, 1, MAX_N):
        raise CommandError("n: expected an integer 1..%d above the last accepted one" % MAX_N)
    if ts is not None and not _int(ts, 0, 1 << 40):
        raise CommandError("ts: expected unix seconds (integer)")
    if chal is not None and not isinstance(chal, str):
        raise CommandError("chal: expected the string of a reply")
    if nonce is not None and (not isinstance(nonce, str) or not 0 < len(nonce) <= _MAX_NONCE):
        raise CommandError("nonce: expected a string of 1..%d characters" % _MAX_NONCE)
    return n, ts, chal, nonce
