# Records and batches of the telelogger (byte-level layout: telelogger/FORMAT.md): what the loop
# stores in the flash queue, one timestamp plus samples (key, value), values kept as scaled integers
# (keys.py gives the decimal places), and the batches that go on the wire, "compact" (binary,
# varints, CRC32; here) or "json" (telelogger/encjson.py, imported when a JSON batch is first built).
# This is the device's codec module (the loop's default); telelogger/encode.py is the same API for
# tools and tests, plus the decoder (telelogger/decode.py), which the device never imports.
from binascii import crc32  # every port we run on has it (ESP32, unix, CPython)

from core.compat import const
from telelogger.tasks import text, unload

# const() with a leading underscore: inlined, no name on the heap
_RECORD_VERSION = const(1)
BATCH_MAGIC = 0xF7
BATCH_VERSION = 1
_UTC_FLAG = const(0x10)
_MAX_VALUES = const(4)  # values per sample (x;y;z tuples and the like)

# the kind of a record in a compact batch (FORMAT.md), also read by telelogger/decode.py
_KIND_UTC = 0
_KIND_MONO = 1
_KIND_MONO_BOOT = 2

# the error texts (telelogger/texts.py, looked up when one is raised: tasks.text), by number
_T_NEG_UVARINT = const(0)
_T_VARINT_CUT = const(1)
_T_VARINT_LONG = const(2)
_T_NOT_FINITE = const(3)
_T_NOT_DECIMAL = const(4)
_T_VALUE_TYPE = const(5)
_T_VALUE_COUNT = const(6)
_T_SAMPLE_KEY = const(7)
_T_KEY_VALUE = const(8)
_T_EMPTY_RECORD = const(9)
_T_RECORD_VERSION = const(10)
_T_SAMPLE_CUT = const(11)
_T_SAMPLE_DP = const(12)
_T_BATCH_FORMAT = const(13)
_T_SEQ_ORDER = const(14)

_POW10 = const((1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000, 1000000000))


def __getattr__(name):
    """_read_sample and get_svarint, the reading of a record's samples: telelogger/encjson.py's (the
    device reads samples back only for a JSON batch), kept importable from here (telelogger/decode.py,
    encode.py, tests)."""
    if name in "_read_sample get_svarint".split():  # (one str: a tuple holds a str object per name)
        from telelogger import encjson

        return getattr(encjson, name)
    raise AttributeError(name)


class FormatError(ValueError):
    """A payload or record that cannot be decoded; the message says where and why."""


# ---------------------------------------------------------------- varints


def put_uvarint(buf, v):
    if v < 0:
        raise ValueError(text(_T_NEG_UVARINT) % v)
    while v >= 0x80:
        buf.append((v & 0x7F) | 0x80)
        v >>= 7
    buf.append(v)


def put_svarint(buf, v):
    put_uvarint(buf, v * 2 if v >= 0 else -v * 2 - 1)


def get_uvarint(b, i, end=None):
    if end is None:
        end = len(b)
    v = 0
    shift = 0
    while True:
        if i >= end:
            raise FormatError(text(_T_VARINT_CUT) % i)
        c = b[i]
        i += 1
        v |= (c & 0x7F) << shift
        if c < 0x80:
            return v, i
        shift += 7
        if shift > 70:
            raise FormatError(text(_T_VARINT_LONG) % i)


# ---------------------------------------------------------------- values


def scale(v, n):
    """Value -> integer value*10**n. int, float, bool, or a decimal string ("47.123456", exact:
    use strings for lat/lng on single-precision ports)."""
    p = _POW10[n]
    if isinstance(v, bool):
        return p if v else 0
    if isinstance(v, int):
        return v * p
    if isinstance(v, float):
        if v - v != 0:  # nan or an infinity (inf - inf is nan)
            raise ValueError(text(_T_NOT_FINITE) % v)
        x = v * p
        return int(x + 0.5) if x >= 0 else -int(-x + 0.5)
    if isinstance(v, str):
        s = v.strip()
        neg = s.startswith("-")
        if neg or s.startswith("+"):
            s = s[1:]
        ip, _, fp = s.partition(".")
        if not (ip or fp) or (ip and not ip.isdigit()) or (fp and not fp.isdigit()):
            raise ValueError(text(_T_NOT_DECIMAL) % v)
        r = int(ip) * p if ip else 0
        f = fp[:n]  # the decimals kept, padded with zeros to n
        if f:
            r += int(f) * _POW10[n - len(f)]
        if len(fp) > n and int(fp[n]) >= 5:  # round half away from zero
            r += 1
        return -r if neg else r
    raise ValueError(text(_T_VALUE_TYPE) % type(v).__name__)


# Decimal places of the known keys (keys.KEYS: all below 0x200, OBD PIDs 0x100|pid), read once into
# one bytearray of 257 bytes, two keys a byte (a dict of them would take four times the heap): key k in
# the low (k even) or high (k odd) 4 bits of _dps[k >> 1], 15 for a key the table does not have; the
# last byte: keys.UNKNOWN_FLOAT_DP.
_NKEYS = const(0x200)
_dps = None  # type: bytearray | None


def dp_of(key):
    """Decimal places of a known key (keys.KEYS), or None for unknown keys. The table is read
    once into a bytearray (_dps above: keys.dp_table builds it) and keys.py is unloaded again."""
    global _dps
    if _dps is None:
        from telelogger import keys

        _dps = keys.dp_table(_NKEYS)
        del keys
        unload("keys")
    dp = (_dps[key >> 1] >> ((key & 1) << 2)) & 15 if 0 <= key < _NKEYS else 15
    return None if dp == 15 else dp


# ---------------------------------------------------------------- records


def encode_record(ms, utc, samples, boot=0):
    """One record. `utc` True: ms is UTC ms since 1970; False: ms is monotonic ms of boot
    number `boot`. samples: list of (key, value), value int/float/bool/decimal str or a tuple/list
    of up to 4 of those (e.g. accelerometer x;y;z)."""
    buf = bytearray()
    if utc:
        buf.append(_RECORD_VERSION | _UTC_FLAG)
        put_uvarint(buf, int(ms))
    else:
        buf.append(_RECORD_VERSION)
        put_uvarint(buf, int(boot))
        put_uvarint(buf, int(ms))
    for key, v in samples:
        # no tuple allocated per sample (neither (tuple, list) nor (v,)): values indexed, range() loops
        multi = isinstance(v, tuple) or isinstance(v, list)
        n = len(v) if multi else 1
        if n < 1 or n > _MAX_VALUES:
            raise ValueError(text(_T_VALUE_COUNT) % (key, n, _MAX_VALUES))
        if not isinstance(key, int) or isinstance(key, bool) or key < 0:
            raise ValueError(text(_T_SAMPLE_KEY) % (key,))
        # decimals: the table's for known keys; unknown keys keep ints as ints and floats/decimal
        # strings with up to keys.UNKNOWN_FLOAT_DP decimals (written explicitly)
        dp = dp_of(key)
        explicit = False
        if dp is None:
            dp = 0
            for j in range(n):
                x = v[j] if multi else v
                if isinstance(x, float):
                    dp = _dps[-1]  # pyright: ignore[reportOptionalSubscript] - dp_of() above filled it
                elif isinstance(x, str):
                    d = x.find(".")  # the decimals a decimal string has
                    d = 0 if d < 0 else len(x) - d - 1
                    if d > dp:
                        dp = min(d, 9)
            explicit = dp != 0
        # key << 1 | ext; ext byte (only when needed): bits 0-1 count-1, bit 2 tuple, bit 3
        # explicit decimals in bits 4-7
        if multi or explicit:
            put_uvarint(buf, (key << 1) | 1)
            buf.append((n - 1) | (4 if multi else 0) | ((8 | (dp << 4)) if explicit else 0))
        else:
            put_uvarint(buf, key << 1)
        for j in range(n):
            try:
                put_svarint(buf, scale(v[j] if multi else v, dp))
            except ValueError as e:
                from telelogger import keys  # the name, for the message only

                name = keys.name_of(key)
                del keys
                unload("keys")
                raise ValueError(text(_T_KEY_VALUE) % (key, name, e))
    return bytes(buf)


def _record_head(b):
    """-> (utc, boot, ts, index of first sample)"""
    if not b:
        raise FormatError(text(_T_EMPTY_RECORD))
    h = b[0]
    if h & 0x0F != _RECORD_VERSION:
        raise FormatError(text(_T_RECORD_VERSION) % (h & 0x0F, _RECORD_VERSION))
    if h & _UTC_FLAG:
        ts, i = get_uvarint(b, 1)
        return True, None, ts, i
    boot, i = get_uvarint(b, 1)
    ts, i = get_uvarint(b, i)
    return False, boot, ts, i


# ---------------------------------------------------------------- batches


def _times(data, utc_offset_ms, boot):
    """Yields (seq, rec, utc_ts_or_None, rec_boot, raw_ts, sample_start); rec_boot is None for a
    UTC record; raw_ts is the record's own ts (monotonic ms for a monotonic record)."""
    for seq, rec in data:
        utc, rb, ts, i = _record_head(rec)
        if utc:
            yield seq, rec, ts, None, ts, i
        else:  # the offset for records of boot rb: an int for boot `boot` (all when None), or {boot: offset}
            off = utc_offset_ms
            if isinstance(off, dict):
                off = off.get(rb)
            elif boot is not None and boot != rb:
                off = None
            yield seq, rec, (None if off is None else ts + off), rb, ts, i


# ---------------------------------------------------------------- batches (compact here)


def encode_batch(device_id, data, fmt, utc_offset_ms=None, boot=None):
    """data: [(seq, record_bytes)] oldest first. fmt "compact" or "json".
    utc_offset_ms: None, an int (UTC ms = mono ms + offset) for records of boot `boot` (all
    monotonic records when boot is None), or a dict {boot: offset}. Monotonic records whose
    boot has no offset stay monotonic (JSON: "ts": null plus "mono" and "boot")."""
    if fmt == "json":
        import sys

        from telelogger.encjson import encode_json  # handed this module: importing it there is a circle

        return encode_json(device_id, data, utc_offset_ms, boot, sys.modules[__name__])
    if fmt != "compact":
        raise ValueError(text(_T_BATCH_FORMAT) % (fmt,))
    # compact (FORMAT.md): magic, version, device id, first seq, base UTC, then per record its kind,
    # sample count, seq gap, time delta and the record's own samples; CRC32 at the end
    buf = bytearray((BATCH_MAGIC, BATCH_VERSION))
    dev = device_id.encode()
    put_uvarint(buf, len(dev))
    buf.extend(dev)
    seq0 = data[0][0] if data else 0
    put_uvarint(buf, seq0)
    base = 0
    for _, _, uts, _, _, _ in _times(data, utc_offset_ms, boot):
        if uts is not None:
            base = uts
            break
    put_uvarint(buf, base)
    prev_utc = base
    prev_mono = 0
    prev_boot = None  # boot of the previous monotonic record (None: none yet)
    expect = seq0
    for seq, rec, uts, rb, mono, i in _times(data, utc_offset_ms, boot):
        if seq < expect:
            raise ValueError(text(_T_SEQ_ORDER) % (seq, expect - 1))
        n = 0  # the samples of the record, counted and their lengths checked without decoding the values
        j = i  # (_read_sample's checks, one tuple per varint: this runs for every record sent)
        end = len(rec)
        while j < end:
            c, j = get_uvarint(rec, j, end)  # the key << 1 | 1 when an ext byte follows
            if c & 1:
                if j >= end:
                    raise FormatError(text(_T_SAMPLE_CUT) % (c >> 1))
                if rec[j] & 8 and rec[j] >> 4 > 9:
                    raise FormatError(text(_T_SAMPLE_DP) % (c >> 1, rec[j] >> 4))
                c = rec[j] & 3
                j += 1
            else:
                c = 0
            while c >= 0:  # the values
                j = get_uvarint(rec, j, end)[1]
                c -= 1
            n += 1
        gap = seq - expect
        if uts is not None:
            kind = _KIND_UTC
        elif prev_boot is not None and rb == prev_boot:
            kind = _KIND_MONO
        else:
            kind = _KIND_MONO_BOOT
        put_uvarint(buf, (n << 3) | (4 if gap else 0) | kind)
        if gap:
            put_uvarint(buf, gap)
        if uts is not None:  # kind == _KIND_UTC
            put_svarint(buf, uts - prev_utc)
            prev_utc = uts
        else:
            if kind == _KIND_MONO:
                put_svarint(buf, mono - prev_mono)
            else:
                put_uvarint(buf, rb)
                put_uvarint(buf, mono)
            prev_mono = mono
            prev_boot = rb
        buf.extend(memoryview(rec)[i:])
        expect = seq + 1
    buf.extend(crc32(buf).to_bytes(4, "little"))  # unsigned on every port we run on
    return bytes(buf)
