# Validation of the telelogger configuration (every key: telelogger/CONFIG.md), boot-only:
# telelogger.config imports this module to validate, then removes it from sys.modules.
#
# check(cfg, complete) -> the merged, normalised config, or raises config.ConfigError carrying
# every error of the file (.errors), each naming the dotted key, what is expected and what was
# given. Secrets are never shown (only their type).
import json

from telelogger.configerror import ConfigError
from telelogger.schema import (AT, DEFAULTS, HIDDEN_KEYS, HMAC_KEY_DISTINCT, HMAC_KEY_MIN, PID_INTERVAL, PLACEHOLDER_DOMAINS,
                               PLACEHOLDER_KEYS, SCHEMA, SECRETS_DEFAULTS, SECRETS_SCHEMA, _HOST_CHARS, _ID_CHARS)


def _show(v, secret=False):
    if secret:
        return "a hidden %s" % _typename(v)
    if isinstance(v, dict):
        return "an object"
    if isinstance(v, list):
        return "a list"
    try:
        s = json.dumps(v)
    except Exception:  # not JSON-able: name the type
        return _typename(v)
    return s if len(s) <= 40 else s[:37] + "..."


def _typename(v):
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, str):
        return "string"
    if isinstance(v, (int, float)):
        return "number"
    if v is None:
        return "null"
    return type(v).__name__


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def range_text(kind, lo, hi):
    if lo is not None and hi is not None:
        return "%s between %s and %s" % (kind, lo, hi)
    if lo is not None:
        return "%s >= %s" % (kind, lo)
    if hi is not None:
        return "%s <= %s" % (kind, hi)
    return kind


def _at_safe(v):
    # over the bytes: iterating a str makes each character an interned name for good (MicroPython
    # interns one-character strings), and a secret's characters would fill the name pool
    for c in v.encode():
        if c == 34 or c < 32 or c == 127:  # '"', control characters, DEL
            return False
    return True


def _check(key, spec, v, secret=False):
    t = spec[0]
    if t == "int":
        if v is None and len(spec) > 3 and spec[3]:
            return None
        if not _is_int(v) or (spec[1] is not None and v < spec[1]) or (spec[2] is not None and v > spec[2]):
            what = range_text("an integer", spec[1], spec[2])
            raise ConfigError(key, what + " or null" if len(spec) > 3 else what, _show(v, secret))
        return v
    if t == "float":
        ok = (_is_int(v) or isinstance(v, float)) and v == v
        if not ok or (spec[1] is not None and v < spec[1]) or (spec[2] is not None and v > spec[2]):
            raise ConfigError(key, range_text("a number", spec[1], spec[2]), _show(v, secret))
        return float(v)
    if t == "bool":
        if not isinstance(v, bool):
            raise ConfigError(key, "true or false", _show(v, secret))
        return v
    if t == "enum":
        if v not in spec[1] or not isinstance(v, str):
            raise ConfigError(key, "one of " + "|".join(spec[1]), _show(v, secret))
        return v
    if t == "str":
        lo, hi, chars = spec[1], spec[2], spec[3]
        what = "a string of %d..%d characters" % (lo, hi)
        if chars is not None and chars is not AT:
            what += " from [%s]" % _chars_text(chars)
        if not isinstance(v, str) or len(v) < lo or len(v) > hi:
            raise ConfigError(key, what, _show(v, secret))
        if chars is AT:
            if not _at_safe(v):
                raise ConfigError(key, what + ' without " or control characters (it goes into an AT command)',
                                  "a hidden string with one" if secret else _show(v))
        elif chars is not None and v.strip(chars):  # a character outside chars (strip: no per-character names)
            raise ConfigError(key, what, _show(v, secret))
        return v
    if t == "key":  # its policy depends on commands.enabled: see _cross
        if not isinstance(v, str):
            raise ConfigError(key, "a string (empty: commands off)", _show(v, True))
        return v
    if t == "pids":
        return _check_pids(key, v)
    raise ValueError("bad schema for %s" % key)


def _chars_text(chars):
    if chars == _ID_CHARS:
        return "A-Za-z0-9_-"
    if chars == _HOST_CHARS:
        return "A-Za-z0-9_-."
    if chars == _ID_CHARS + "/":
        return "A-Za-z0-9_-/"
    return chars


def _pid_known():
    """pid -> True when obdii.pids has a formula for it (None when that table is not installed)."""
    try:
        from obdii import pids
    except ImportError:
        return None
    return lambda n: pids.entry(n) is not None


def _check_pids(key, v):
    if not isinstance(v, dict):
        raise ConfigError(key, "an object {\"<PID hex>\": interval ms}", _show(v))
    out = {}
    errs = []
    known = _pid_known()
    for pid in v:
        k = "%s.%s" % (key, pid)
        ok = isinstance(pid, str) and len(pid) == 2
        if ok:
            try:
                n = int(pid, 16)
            except ValueError:
                ok = False
        if not ok or not (0x01 <= n <= 0xFF):
            errs.append(ConfigError(k, "a 2-digit hex mode-01 PID (01..FF) as key", _show(pid)))
            continue
        if known is not None and not known(n):
            errs.append(ConfigError(k, "a mode-01 PID with a value formula in obdii/pids.py (not a bitmap, bit field or unknown PID)", _show(pid)))
            continue
        iv = v[pid]
        lo, hi = PID_INTERVAL
        if not _is_int(iv) or iv < lo or iv > hi:
            errs.append(ConfigError(k, range_text("an integer (ms)", lo, hi), _show(iv)))
            continue
        norm = pid.upper()
        if norm in out:
            errs.append(ConfigError(k, "each PID once", "a duplicate of %s" % norm))
            continue
        out[norm] = iv
    if errs:
        raise ConfigError.of(errs)
    return out


def _walk(prefix, defaults, given, schema, secret, out, errs):
    """Merge `given` over `defaults` into out, checking every leaf against schema; errors are
    appended to errs (the default stands in for a refused value, so later checks can run)."""
    if not isinstance(given, dict):
        errs.append(ConfigError(prefix[:-1] or "(top level)", "an object", _show(given, secret)))
        given = {}
    for k in given:
        if k not in defaults:
            errs.append(ConfigError(prefix + (k or '""'), "one of the known keys (%s)" % ", ".join(sorted(defaults)),
                                    "unknown key %s" % json.dumps(k)))
    for k in defaults:
        dk = prefix + k
        d = defaults[k]
        v = given[k] if k in given else d
        spec = schema.get(dk)
        if spec is None and isinstance(d, dict):
            sub = {}
            _walk(dk + ".", d, v, schema, secret, sub, errs)
            out[k] = sub
        else:
            try:
                out[k] = _check(dk, spec, v, secret or dk in HIDDEN_KEYS)
            except ConfigError as e:
                errs.extend(e.errors)
                out[k] = d


def _placeholder_host(h):
    h = h.lower().rstrip(".")
    for d in PLACEHOLDER_DOMAINS:
        if h == d or h.endswith("." + d):
            return True
    return False


def _distinct(s):
    """Distinct characters of s (of its UTF-8 bytes when not ASCII: the bytes are the key material).
    Not by iterating the str: each one-character string would be an interned name for good."""
    return len(set(s.encode()))


def _cross(out, complete, errs):
    """Checks between keys, and (complete) that what a device needs is there."""
    def err(key, expected, got):
        errs.append(ConfigError(key, expected, got))

    q = out["queue"]
    if q["segment_bytes"] * 2 > q["max_bytes"]:
        err("queue.segment_bytes", "at most queue.max_bytes / 2 (%d)" % (q["max_bytes"] // 2), str(q["segment_bytes"]))
    iv = out["intervals"]
    if iv["reconnect_max_ms"] < iv["reconnect_min_ms"]:
        err("intervals.reconnect_max_ms", "at least intervals.reconnect_min_ms (%d)" % iv["reconnect_min_ms"], str(iv["reconnect_max_ms"]))
    s = out["standby"]
    if s["voltage_off"] and s["voltage_wake"] <= s["voltage_off"]:
        err("standby.voltage_wake", "greater than standby.voltage_off (%s)" % s["voltage_off"], str(s["voltage_wake"]))
    sec = out["secrets"]
    if out["transport"] == "wifi" and not sec["wifi_ssid"]:
        err("secrets.wifi_ssid", "a network name when transport is \"wifi\"", "\"\"")
    b = out["broker"]
    host = b["host"]
    if host and _placeholder_host(host):
        err("broker.host", "your broker's host name (not the example's placeholder)", _show(host))
    elif complete and not host:
        err("broker.host", "the broker's host name (required: without it data queues for ever)", "\"\"")
    certs = sec["certs"]
    if b["tls"] and b["tls_verify"] and complete and not certs["ca"]:
        err("secrets.certs.ca", "the CA certificate file that verifies the broker when broker.tls and "
            "broker.tls_verify are true (or broker.tls_verify: false, accepting an unverified broker)", "\"\"")
    if bool(certs["cert"]) != bool(certs["key"]):
        miss = "secrets.certs.key" if certs["cert"] else "secrets.certs.cert"
        err(miss, "a client certificate and its key together (both or neither)", "\"\"")
    key = sec["hmac_key"]
    if key and out["commands"]["enabled"]:
        if key in PLACEHOLDER_KEYS:
            err("secrets.hmac_key", "a key of your own when commands are enabled (this is the example's "
                "published placeholder: anyone could command the device)", "the placeholder")
        elif len(key) < HMAC_KEY_MIN or _distinct(key) < HMAC_KEY_DISTINCT:
            err("secrets.hmac_key", "at least %d random characters (%d or more different ones) when commands "
                "are enabled, or commands.enabled: false" % (HMAC_KEY_MIN, HMAC_KEY_DISTINCT),
                "a hidden string of %d characters" % len(key))


def _prefixed(schema, p):
    d = {}
    for k in schema:
        d[p + k] = schema[k]
    return d


def check_secrets(sec, errs):
    out = {}
    _walk("secrets.", SECRETS_DEFAULTS, sec, _prefixed(SECRETS_SCHEMA, "secrets."), True, out, errs)
    return out


def check(cfg, complete=True):
    """A full or partial config (missing keys take defaults) -> the merged, normalised config (new
    dict). A "secrets" member, if present, is validated as a secrets file. complete: also require
    what a device needs to deliver (broker.host; secrets.certs.ca when TLS verifies); the loop's
    own tests validate partial configs without it."""
    errs = []
    if not isinstance(cfg, dict):
        raise ConfigError("(config file)", "a JSON object", _show(cfg))
    given = dict(cfg)
    secrets = given.pop("secrets", None)
    path = given.pop("config_path", None)  # recorded by config.load: a loaded config validates again
    out = {}
    _walk("", DEFAULTS, given, SCHEMA, False, out, errs)
    out["secrets"] = check_secrets(secrets if secrets is not None else {}, errs)
    _cross(out, complete, errs)
    if errs:
        raise ConfigError.of(errs)
    if path is not None:
        out["config_path"] = path
    return out
