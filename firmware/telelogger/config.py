# Telelogger configuration: defaults, loading, validation (every key: telelogger/CONFIG.md).
#
# cfg = load("config.json", "secrets.json")   # defaults merged, validated, secrets under cfg["secrets"]
# validate(cfg) raises ConfigError naming the dotted key, what was expected and what was given.
# Unknown keys are rejected (typo protection). Secrets are never printed: use redacted(cfg).
import json

SECRET_MASK = "***"

DEFAULTS = {
    "device_id": "auto",
    "transport": "cellular",
    "encoding": "compact",
    "topic_prefix": "freematics",
    "broker": {"host": "", "port": 8883, "tls": True, "keepalive": 60, "clean_session": True},
    "cellular": {"apn": "", "sim_pin": "", "ssl_ctx": 0},
    "obd": {
        "enabled": True,
        # hex PID -> interval ms. Tiers of the official firmware (1 s / 3 s / 6 s) plus slow extras.
        "pids": {
            "0D": 1000, "0C": 1000, "11": 1000, "04": 1000,  # speed, rpm, throttle, load
            "0A": 3000, "0E": 3000,  # fuel pressure, timing advance
            "05": 6000, "0F": 6000,  # coolant, intake air temperature
            "10": 5000,  # MAF
            "2F": 60000,  # fuel level
            "46": 60000,  # ambient air temperature
            "33": 60000,  # barometric pressure
            "31": 300000,  # distance since codes cleared
        },
    },
    "gnss": {"source": "uart", "interval_ms": 1000},
    "batch": {"max_records": 20, "max_age_ms": 10000, "max_bytes": 8192},
    "queue": {"max_bytes": 262144, "segment_bytes": 16384},
    "intervals": {
        "battery_ms": 10000, "signal_ms": 30000, "status_ms": 300000,
        "record_ms": None,  # None: the shortest obd.pids interval (1000 without PIDs), as the loop does
        "reconnect_min_ms": 1000, "reconnect_max_ms": 60000, "wdt_feed_ms": 1000,
    },
    "standby": {"voltage_off": 11.8, "voltage_wake": 13.6, "stationary_s": 600, "heartbeat_s": 900, "flush_s": 30},
    "commands": {"enabled": True, "window_s": 300, "nonces": 32},
    # the modem conversation in the "=== SENT@ms ===" format that scripts/at_doctor.py reads ("" = off);
    # at most at_log_max bytes, then the file is moved to <name>.1 and started again
    "debug": {"at_log": "", "at_log_max": 65536},
}

SECRETS_DEFAULTS = {
    "apn_user": "",
    "apn_pass": "",
    "mqtt_user": "",
    "mqtt_pass": "",
    "hmac_key": "",
    "wifi_ssid": "",
    "wifi_password": "",
    "certs": {"ca": "", "cert": "", "key": ""},
}

# Schema as data: dotted key -> spec. ("int", lo, hi) / ("float", lo, hi) (None = unbounded;
# ("int", lo, hi, True) also accepts null = derived by the loop),
# ("bool",), ("str", minlen, maxlen, allowed-chars or None), ("enum", choices), ("pids",).
_ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
_HOST_CHARS = _ID_CHARS + "."
SCHEMA = {
    "device_id": ("str", 1, 32, _ID_CHARS),
    "transport": ("enum", ("cellular", "wifi")),
    "encoding": ("enum", ("compact", "json")),
    "topic_prefix": ("str", 1, 64, _ID_CHARS + "/"),
    "broker.host": ("str", 0, 128, _HOST_CHARS),
    "broker.port": ("int", 1, 65535),
    "broker.tls": ("bool",),
    "broker.keepalive": ("int", 10, 64800),
    "broker.clean_session": ("bool",),
    "cellular.apn": ("str", 0, 62, None),
    "cellular.sim_pin": ("str", 0, 8, "0123456789"),
    "cellular.ssl_ctx": ("int", 0, 9),
    "obd.enabled": ("bool",),
    "obd.pids": ("pids",),
    "gnss.source": ("enum", ("uart", "modem", "coproc", "none")),
    "gnss.interval_ms": ("int", 100, 3600000),
    "batch.max_records": ("int", 1, 500),
    "batch.max_age_ms": ("int", 0, 3600000),
    "batch.max_bytes": ("int", 256, 10240),  # SIM7600 AT+CMQTTPAYLOAD takes at most 10240 bytes
    "queue.max_bytes": ("int", 4096, None),
    "queue.segment_bytes": ("int", 512, 1048576),
    "intervals.battery_ms": ("int", 100, 86400000),
    "intervals.signal_ms": ("int", 100, 86400000),
    "intervals.status_ms": ("int", 1000, 86400000),
    "intervals.record_ms": ("int", 100, 3600000, True),
    "intervals.reconnect_min_ms": ("int", 100, 600000),
    "intervals.reconnect_max_ms": ("int", 1000, 3600000),
    "intervals.wdt_feed_ms": ("int", 100, 30000),  # at most half the 60 s hardware watchdog
    "standby.voltage_off": ("float", 0, 30),
    "standby.voltage_wake": ("float", 0, 30),
    "standby.stationary_s": ("int", 0, 86400),
    "standby.heartbeat_s": ("int", 0, 86400),
    "standby.flush_s": ("int", 0, 3600),
    "commands.enabled": ("bool",),
    "debug.at_log": ("str", 0, 255, None),
    "debug.at_log_max": ("int", 1024, 1048576),
    "commands.window_s": ("int", 10, 86400),
    "commands.nonces": ("int", 1, 1024),
}
PID_INTERVAL = (100, 3600000)

SECRETS_SCHEMA = {
    "apn_user": ("str", 0, 64, None),
    "apn_pass": ("str", 0, 64, None),
    "mqtt_user": ("str", 0, 256, None),
    "mqtt_pass": ("str", 0, 256, None),
    "hmac_key": ("key",),
    "wifi_ssid": ("str", 0, 32, None),
    "wifi_password": ("str", 0, 64, None),
    "certs.ca": ("str", 0, 128, None),
    "certs.cert": ("str", 0, 128, None),
    "certs.key": ("str", 0, 128, None),
}
HMAC_KEY_MIN = 16


class ConfigError(ValueError):
    """`key`: dotted key, `expected`: what is allowed, `got`: what was given (already rendered)."""

    def __init__(self, key, expected, got):
        super().__init__("%s: expected %s, got %s" % (key, expected, got))
        self.key = key
        self.expected = expected
        self.got = got


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


def _range_text(kind, lo, hi):
    if lo is not None and hi is not None:
        return "%s between %s and %s" % (kind, lo, hi)
    if lo is not None:
        return "%s >= %s" % (kind, lo)
    if hi is not None:
        return "%s <= %s" % (kind, hi)
    return kind


def _check(key, spec, v, secret=False):
    t = spec[0]
    if t == "int":
        if v is None and len(spec) > 3 and spec[3]:
            return None
        if not _is_int(v) or (spec[1] is not None and v < spec[1]) or (spec[2] is not None and v > spec[2]):
            what = _range_text("an integer", spec[1], spec[2])
            raise ConfigError(key, what + " or null" if len(spec) > 3 else what, _show(v, secret))
        return v
    if t == "float":
        ok = (_is_int(v) or isinstance(v, float)) and v == v
        if not ok or (spec[1] is not None and v < spec[1]) or (spec[2] is not None and v > spec[2]):
            raise ConfigError(key, _range_text("a number", spec[1], spec[2]), _show(v, secret))
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
        if chars is not None:
            what += " from [%s]" % _chars_text(chars)
        if not isinstance(v, str) or len(v) < lo or len(v) > hi:
            raise ConfigError(key, what, _show(v, secret))
        if chars is not None:
            for c in v:
                if c not in chars:
                    raise ConfigError(key, what, _show(v, secret))
        return v
    if t == "key":
        if not isinstance(v, str) or (v and len(v) < HMAC_KEY_MIN):
            raise ConfigError(key, "a string of at least %d characters (or empty: commands off)" % HMAC_KEY_MIN, _show(v, True))
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


def _check_pids(key, v):
    if not isinstance(v, dict):
        raise ConfigError(key, "an object {\"<PID hex>\": interval ms}", _show(v))
    out = {}
    for pid in v:
        k = "%s.%s" % (key, pid)
        ok = isinstance(pid, str) and len(pid) == 2
        if ok:
            try:
                n = int(pid, 16)
            except ValueError:
                ok = False
        if not ok or not (0x01 <= n <= 0xFF):
            raise ConfigError(k, "a 2-digit hex mode-01 PID (01..FF) as key", _show(pid))
        iv = v[pid]
        lo, hi = PID_INTERVAL
        if not _is_int(iv) or iv < lo or iv > hi:
            raise ConfigError(k, _range_text("an integer (ms)", lo, hi), _show(iv))
        norm = pid.upper()
        if norm in out:
            raise ConfigError(k, "each PID once", "a duplicate of %s" % norm)
        out[norm] = iv
    return out


def _walk(prefix, defaults, given, schema, secret, out):
    """Merge `given` over `defaults` into out, checking every leaf against schema."""
    if not isinstance(given, dict):
        raise ConfigError(prefix[:-1] or "(top level)", "an object", _show(given, secret))
    for k in given:
        if k not in defaults:
            dk = prefix + k
            raise ConfigError(dk, "one of the known keys (%s)" % ", ".join(sorted(defaults)), "unknown key %s" % json.dumps(k))
    for k in defaults:
        dk = prefix + k
        d = defaults[k]
        v = given[k] if k in given else d
        spec = schema.get(dk)
        if spec is None and isinstance(d, dict):
            sub = {}
            _walk(dk + ".", d, v, schema, secret, sub)
            out[k] = sub
        else:
            out[k] = _check(dk, spec, v, secret)


def validate(cfg):
    """Checks a full or partial config (missing keys take defaults); returns the merged, normalised
    config (new dict). A "secrets" member, if present, is validated as a secrets file."""
    given = dict(cfg)
    secrets = given.pop("secrets", None)
    out = {}
    _walk("", DEFAULTS, given, SCHEMA, False, out)
    q = out["queue"]
    if q["segment_bytes"] * 2 > q["max_bytes"]:
        raise ConfigError("queue.segment_bytes", "at most queue.max_bytes / 2 (%d)" % (q["max_bytes"] // 2), str(q["segment_bytes"]))
    iv = out["intervals"]
    if iv["reconnect_max_ms"] < iv["reconnect_min_ms"]:
        raise ConfigError("intervals.reconnect_max_ms", "at least intervals.reconnect_min_ms (%d)" % iv["reconnect_min_ms"], str(iv["reconnect_max_ms"]))
    s = out["standby"]
    if s["voltage_off"] and s["voltage_wake"] <= s["voltage_off"]:
        raise ConfigError("standby.voltage_wake", "greater than standby.voltage_off (%s)" % s["voltage_off"], str(s["voltage_wake"]))
    out["secrets"] = validate_secrets(secrets if secrets is not None else {})
    if out["transport"] == "wifi" and not out["secrets"]["wifi_ssid"]:
        raise ConfigError("secrets.wifi_ssid", "a network name when transport is \"wifi\"", "\"\"")
    return out


def validate_secrets(sec):
    out = {}
    _walk("secrets.", SECRETS_DEFAULTS, sec, _prefixed(SECRETS_SCHEMA, "secrets."), True, out)
    return out


def _prefixed(schema, p):
    d = {}
    for k in schema:
        d[p + k] = schema[k]
    return d


def _read_json(path, what):
    try:
        with open(path) as f:
            text = f.read()
    except OSError as e:
        raise ConfigError(what, "a readable JSON file at %s" % path, "error %s" % (e.args[0] if e.args else e))
    except UnicodeError:  # flash corruption or a binary file: not UTF-8 text
        raise ConfigError(what, "UTF-8 JSON text in %s" % path, "bytes that are not UTF-8")
    try:
        return json.loads(text)
    except ValueError as e:
        raise ConfigError(what, "valid JSON in %s" % path, "a syntax error (%s)" % e)


def load(cfg_path, secrets_path=None):
    """Reads the config (and the separate secrets file, whose keys end up under cfg["secrets"]),
    merges defaults, validates. A missing secrets file is an error only when a path is given."""
    cfg = _read_json(cfg_path, "(config file)")
    if not isinstance(cfg, dict):
        raise ConfigError("(config file)", "a JSON object", _show(cfg))
    if "secrets" in cfg:
        raise ConfigError("secrets", "secrets in their own file (secrets.json), not in the config", "a \"secrets\" member")
    if secrets_path is not None:
        cfg = dict(cfg)
        cfg["secrets"] = _read_json(secrets_path, "(secrets file)")
    return validate(cfg)


def redacted(cfg):
    """Copy of cfg safe to log: every non-empty secret replaced by "***"."""
    out = {}
    for k in cfg:
        v = cfg[k]
        if k == "secrets" and isinstance(v, dict):
            out[k] = _mask(v)
        elif isinstance(v, dict):
            out[k] = redacted(v)
        else:
            out[k] = v
    return out


def _mask(d):
    out = {}
    for k in d:
        v = d[k]
        if isinstance(v, dict):
            out[k] = _mask(v)
        else:
            out[k] = SECRET_MASK if v else v
    return out


def get(cfg, dotted):
    """cfg value at a dotted key ("queue.max_bytes")."""
    v = cfg
    for part in dotted.split("."):
        v = v[part]
    return v
