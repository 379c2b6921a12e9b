# Sample keys: the numeric key of every value the telelogger records, its JSON name and
# the number of decimal places kept (values are stored as scaled integers: value * 10**dp).
# Numbering follows the official Freematics telelogger: OBD PIDs as 0x100|pid, GNSS 0x0A..0x12,
# battery 0x24, accelerometer 0x20, signal 0x81, device temperature 0x82. Keys 0x90.. are ours.
# This table is data; the device reads it once (encode.dp_of: decimal places; encjson.name_of:
# JSON names) and unloads it again; decode.py and scripts read it for names and units.

# key: (json name, decimal places, unit)
KEYS = {
    # --- GNSS (official codes)
    0x10: ("gps_time", 0, "hhmmsscc UTC"),
    0x11: ("gps_date", 0, "ddmmyy"),
    0x0A: ("lat", 6, "deg"),
    0x0B: ("lng", 6, "deg"),
    0x0C: ("alt", 1, "m"),
    0x0D: ("gps_speed", 1, "km/h"),
    0x0E: ("heading", 0, "deg"),
    0x0F: ("sats", 0, "count"),
    0x12: ("hdop", 1, ""),
    # --- device (official codes)
    0x20: ("acc", 2, "g (x;y;z)"),
    0x21: ("gyro", 1, "deg/s (x;y;z)"),
    0x24: ("battery", 2, "V"),
    0x81: ("signal", 0, "dBm"),
    0x82: ("dev_temp", 0, "C"),
    # --- ours: health of the data path
    0x90: ("q_dropped", 0, "records dropped (queue full), total"),
    0x91: ("q_pending", 0, "records queued, not yet acknowledged"),
    0x92: ("boot_count", 0, "boot counter"),
    0x93: ("reconnects", 0, "network reconnects, total"),
    0x94: ("uptime", 0, "s"),
    0x95: ("obd_errors", 0, "consecutive OBD read errors"),
    # --- OBD-II mode 01 PIDs: 0x100 | pid. Names and units are obdii/pids.py's (one home:
    # host_tests/test_decode.py checks they agree); the decimal places are ours.
    0x104: ("engine_load", 0, "%"),
    0x105: ("coolant_temp", 0, "C"),
    0x106: ("short_fuel_trim_1", 1, "%"),
    0x107: ("long_fuel_trim_1", 1, "%"),
    0x10A: ("fuel_pressure", 0, "kPa"),
    0x10B: ("intake_map", 0, "kPa"),
    0x10C: ("rpm", 0, "rpm"),
    0x10D: ("speed", 0, "km/h"),
    0x10E: ("timing_advance", 1, "deg"),
    0x10F: ("intake_temp", 0, "C"),
    0x110: ("maf", 2, "g/s"),
    0x111: ("throttle", 0, "%"),
    0x11F: ("run_time", 0, "s"),
    0x121: ("distance_mil", 0, "km"),
    0x12F: ("fuel_level", 0, "%"),
    0x131: ("distance_since_clear", 0, "km"),
    0x133: ("baro_pressure", 0, "kPa"),
    0x142: ("module_voltage", 2, "V"),
    0x143: ("absolute_load", 0, "%"),
    0x145: ("relative_throttle", 0, "%"),
    0x146: ("ambient_temp", 0, "C"),
    0x15C: ("oil_temp", 0, "C"),
    0x15E: ("fuel_rate", 2, "L/h"),
}

# Keys not in the table get the JSON name "k" + hex (e.g. "k1a6"); see name_of / key_of.
UNKNOWN_PREFIX = "k"
# Unknown keys with float values keep this many decimals (written into the record).
UNKNOWN_FLOAT_DP = 3
# Names reserved for record metadata in the JSON format: no key may use them.
RESERVED = ("seq", "ts", "mono", "boot")

OBD_BASE = 0x100


def obd_key(pid):
    """Key of OBD-II mode 01 PID `pid` (int)."""
    return OBD_BASE | pid


def name_of(key):
    e = KEYS.get(key)
    if e is not None:
        return e[0]
    return "%s%x" % (UNKNOWN_PREFIX, key)


def dp_of(key):
    """Decimal places of a known key, or None for unknown keys."""
    e = KEYS.get(key)
    return None if e is None else e[1]


def dp_table(n):
    """telelogger.record.dp_of's table (built once, on the device while this module is loaded for it):
    the decimal places of keys 0..n-1 (n even), two a byte: key k in the low (k even) or high (k odd)
    4 bits of byte k >> 1, 15 for a key not in KEYS; the last byte is UNKNOWN_FLOAT_DP."""
    d = bytearray(n // 2 + 1)
    for k in range(n // 2):
        d[k] = 0xFF
    for k in KEYS:
        s = (k & 1) << 2
        d[k >> 1] = (d[k >> 1] & (0xF0 >> s)) | (KEYS[k][1] << s)
    d[-1] = UNKNOWN_FLOAT_DP
    return d


def key_of(name):
    """Inverse of name_of; raises KeyError for a name that is neither in the table nor k<hex>.
    (For tools and tests: the device never calls it, so it keeps no reverse table.)"""
    for k in KEYS:
        if KEYS[k][0] == name:
            return k
    if len(name) > 1 and name[0] == UNKNOWN_PREFIX:
        try:
            return int(name[1:], 16)
        except ValueError:
            pass
    raise KeyError("unknown sample name %r" % name)
