# Records and batches of the telelogger (byte-level layout: telelogger/FORMAT.md).
#
# A record is what the loop stores in the flash queue: one timestamp plus samples
# (key, value), values kept as scaled integers (keys.py gives the decimal places).
# A batch is what goes on the wire: "compact" (binary, varints, CRC32) or "json".
# official_text() renders the official Freematics text format, for comparison.
import json

from telelogger import keys as K

from binascii import crc32  # every port we run on has it (ESP32, unix, CPython)

RECORD_VERSION = 1
BATCH_MAGIC = 0xF7
BATCH_VERSION = 1
_UTC_FLAG = 0x10
MAX_VALUES = 4  # values per sample (x;y;z tuples and the like)

_KIND_UTC = 0
_KIND_MONO = 1
_KIND_MONO_BOOT = 2

_POW10 = (1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000, 1000000000)


class FormatError(ValueError):
    """A payload or record that cannot be decoded; the message says where and why."""


# ---------------------------------------------------------------- varints


def put_uvarint(buf, v):
    if v < 0:
        raise ValueError("uvarint of negative %d" % v)
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
            raise FormatError("truncated varint at byte %d" % i)
        c = b[i]
        i += 1
        v |= (c & 0x7F) << shift
        if c < 0x80:
            return v, i
        shift += 7
        if shift > 70:
            raise FormatError("varint too long at byte %d" % i)


def get_svarint(b, i, end=None):
    z, i = get_uvarint(b, i, end)
    return (z >> 1) if not (z & 1) else -((z + 1) >> 1), i


# ---------------------------------------------------------------- values


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _decimals_of_str(s):
    p = s.find(".")
    return 0 if p < 0 else len(s) - p - 1


def scale(v, dp):
    """Value -> integer value*10**dp. int, float, bool, or a decimal string ("47.123456", exact:
    use strings for lat/lng on single-precision ports)."""
    p = _POW10[dp]
    if isinstance(v, bool):
        return p if v else 0
    if isinstance(v, int):
        return v * p
    if isinstance(v, float):
        if v != v or v in (float("inf"), float("-inf")):
            raise ValueError("cannot encode %r" % v)
        x = v * p
        return int(x + 0.5) if x >= 0 else -int(-x + 0.5)
    if isinstance(v, str):
        s = v.strip()
        neg = s.startswith("-")
        if neg or s.startswith("+"):
            s = s[1:]
        ip, _, fp = s.partition(".")
        if not (ip or fp) or (ip and not ip.isdigit()) or (fp and not fp.isdigit()):
            raise ValueError("not a decimal number: %r" % v)
        r = int(ip or "0") * p
        if dp:
            f = (fp + "0" * dp)[:dp]
            r += int(f)
        if len(fp) > dp and fp[dp] >= "5":  # round half away from zero
            r += 1
        return -r if neg else r
    raise ValueError("cannot encode value of type %s" % type(v).__name__)


def fmt_scaled(v, dp):
    """Scaled integer -> exact decimal text (no float round trip)."""
    if dp == 0:
        return str(v)
    a = -v if v < 0 else v
    f = str(a % _POW10[dp])
    return "%s%d.%s%s" % ("-" if v < 0 else "", a // _POW10[dp], "0" * (dp - len(f)), f)


def _value(v, dp):
    if dp == 0:
        return v
    return float(fmt_scaled(v, dp))  # same parser as json.loads: identical floats


def _sample_dp(key, vals):
    """(dp, explicit) for a sample: table decimals for known keys; unknown keys keep ints as
    ints and floats/decimal strings with up to UNKNOWN_FLOAT_DP decimals (written explicitly)."""
    dp = K.dp_of(key)
    if dp is not None:
        return dp, False
    dp = 0
    for v in vals:
        if isinstance(v, float):
            dp = K.UNKNOWN_FLOAT_DP
        elif isinstance(v, str):
            d = _decimals_of_str(v)
            if d > dp:
                dp = min(d, 9)
    return dp, dp != 0


# ---------------------------------------------------------------- records


def encode_record(ts_ms, utc, samples, boot=0):
    """One record. `utc` True: ts_ms is UTC ms since 1970; False: ts_ms is monotonic ms of boot
    number `boot`. samples: list of (key, value), value int/float/bool/decimal str or a tuple/list
    of up to 4 of those (e.g. accelerometer x;y;z)."""
    buf = bytearray()
    if utc:
        buf.append(RECORD_VERSION | _UTC_FLAG)
        put_uvarint(buf, int(ts_ms))
    else:
        buf.append(RECORD_VERSION)
        put_uvarint(buf, int(boot))
        put_uvarint(buf, int(ts_ms))
    for key, v in samples:
        multi = isinstance(v, (tuple, list))
        vals = v if multi else (v,)
        n = len(vals)
        if n < 1 or n > MAX_VALUES:
            raise ValueError("key 0x%x: %d values, expected 1..%d" % (key, n, MAX_VALUES))
        if not _is_int(key) or key < 0:
            raise ValueError("sample key must be a non-negative int, got %r" % (key,))
        dp, explicit = _sample_dp(key, vals)
        # key << 1 | ext; ext byte (only when needed): bits 0-1 count-1, bit 2 tuple, bit 3
        # explicit decimals in bits 4-7
        if multi or explicit:
            put_uvarint(buf, (key << 1) | 1)
            buf.append((n - 1) | (4 if multi else 0) | ((8 | (dp << 4)) if explicit else 0))
        else:
            put_uvarint(buf, key << 1)
        for x in vals:
            try:
                put_svarint(buf, scale(x, dp))
            except ValueError as e:
                raise ValueError("key 0x%x (%s): %s" % (key, K.name_of(key), e))
    return bytes(buf)


def _record_head(rec):
    """-> (utc, boot, ts, index of first sample)"""
    if not rec:
        raise FormatError("empty record")
    h = rec[0]
    if h & 0x0F != RECORD_VERSION:
        raise FormatError("record version %d, expected %d" % (h & 0x0F, RECORD_VERSION))
    if h & _UTC_FLAG:
        ts, i = get_uvarint(rec, 1)
        return True, None, ts, i
    boot, i = get_uvarint(rec, 1)
    ts, i = get_uvarint(rec, i)
    return False, boot, ts, i


def _read_sample(b, i, end):
    """-> (key, dp, multi, [scaled ints], next index)"""
    h, i = get_uvarint(b, i, end)
    key = h >> 1
    n = 1
    multi = False
    dp = None
    if h & 1:
        if i >= end:
            raise FormatError("truncated sample 0x%x" % key)
        e = b[i]
        i += 1
        n = (e & 3) + 1
        multi = bool(e & 4)
        if e & 8:
            dp = e >> 4
            if dp > 9:
                raise FormatError("sample 0x%x: %d decimals" % (key, dp))
    if dp is None:
        dp = K.dp_of(key) or 0
    vals = []
    for _ in range(n):
        v, i = get_svarint(b, i, end)
        vals.append(v)
    return key, dp, multi, vals, i


def _iter_samples(b, i, end):
    """Yields (key, dp, multi, [scaled ints]) from b[i:end]."""
    while i < end:
        key, dp, multi, vals, i = _read_sample(b, i, end)
        yield key, dp, multi, vals


def _sample_span(b, i, end):
    """Length check + count of the samples in b[i:end]."""
    n = 0
    for _ in _iter_samples(b, i, end):
        n += 1
    return n


def decode_record(rec):
    """-> {"utc": bool, "ts": ms, "boot": int|None, "samples": [(key, value)]}; values are
    int (0 decimals), float, or list for tuples."""
    utc, boot, ts, i = _record_head(rec)
    out = []
    for key, dp, multi, vals in _iter_samples(rec, i, len(rec)):
        if multi:
            out.append((key, [_value(v, dp) for v in vals]))
        else:
            out.append((key, _value(vals[0], dp)))
    return {"utc": utc, "ts": ts, "boot": boot, "samples": out}


# ---------------------------------------------------------------- batches


def _offset_for(utc_offset_ms, boot, rec_boot):
    if utc_offset_ms is None:
        return None
    if isinstance(utc_offset_ms, dict):
        return utc_offset_ms.get(rec_boot)
    if boot is None or boot == rec_boot:
        return utc_offset_ms
    return None


def encode_batch(device_id, entries, fmt, utc_offset_ms=None, boot=None):
    """entries: [(seq, record_bytes)] oldest first. fmt "compact" or "json".
    utc_offset_ms: None, an int (UTC ms = mono ms + offset) for records of boot `boot` (all
    monotonic records when boot is None), or a dict {boot: offset}. Monotonic records whose
    boot has no offset stay monotonic (JSON: "ts": null plus "mono" and "boot")."""
    if fmt == "compact":
        return _encode_compact(device_id, entries, utc_offset_ms, boot)
    if fmt == "json":
        return _encode_json(device_id, entries, utc_offset_ms, boot)
    raise ValueError("unknown batch format %r (compact|json)" % (fmt,))


def _times(entries, utc_offset_ms, boot):
    """Yields (seq, rec, utc_ts_or_None, rec_boot, raw_ts, sample_start); rec_boot is None for a
    UTC record; raw_ts is the record's own ts (monotonic ms for a monotonic record)."""
    for seq, rec in entries:
        utc, rb, ts, i = _record_head(rec)
        if utc:
            yield seq, rec, ts, None, ts, i
        else:
            off = _offset_for(utc_offset_ms, boot, rb)
            yield seq, rec, (None if off is None else ts + off), rb, ts, i


def _encode_compact(device_id, entries, utc_offset_ms, boot):
    buf = bytearray((BATCH_MAGIC, BATCH_VERSION))
    dev = device_id.encode()
    put_uvarint(buf, len(dev))
    buf.extend(dev)
    seq0 = entries[0][0] if entries else 0
    put_uvarint(buf, seq0)
    base = 0
    for _, _, uts, _, _, _ in _times(entries, utc_offset_ms, boot):
        if uts is not None:
            base = uts
            break
    put_uvarint(buf, base)
    prev_utc = base
    prev_mono = 0
    prev_boot = None  # boot of the previous monotonic record (None: none yet)
    expect = seq0
    for seq, rec, uts, rb, mono, i in _times(entries, utc_offset_ms, boot):
        if seq < expect:
            raise ValueError("seqs must increase: %d after %d" % (seq, expect - 1))
        n = _sample_span(rec, i, len(rec))
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
    put_crc(buf)
    return bytes(buf)


def put_crc(buf):
    c = crc32(buf) & 0xFFFFFFFF
    buf.extend(c.to_bytes(4, "little"))


def _json_samples(parts, b, i, end):
    for key, dp, multi, vals in _iter_samples(b, i, end):
        parts.append(',"%s":' % K.name_of(key))
        if multi:
            parts.append("[" + ",".join([fmt_scaled(v, dp) for v in vals]) + "]")
        else:
            parts.append(fmt_scaled(vals[0], dp))


def _encode_json(device_id, entries, utc_offset_ms, boot):
    # Written by hand so numbers are exact decimals on single-precision ports too.
    parts = ['{"v":%d,"dev":%s,"seq0":%d,"recs":[' % (BATCH_VERSION, json.dumps(device_id), entries[0][0] if entries else 0)]
    first = True
    for seq, rec, uts, rb, mono, i in _times(entries, utc_offset_ms, boot):
        parts.append('{"seq":%d' % seq if first else ',{"seq":%d' % seq)
        first = False
        if uts is not None:
            parts.append(',"ts":%d' % uts)
        else:
            parts.append(',"ts":null,"mono":%d,"boot":%d' % (mono, rb))
        _json_samples(parts, rec, i, len(rec))
        parts.append("}")
    parts.append("]}")
    return "".join(parts).encode()


def _decode_compact(b):
    if len(b) < 7:
        raise FormatError("compact batch too short (%d bytes)" % len(b))
    end = len(b) - 4
    want = int.from_bytes(bytes(b[end:]), "little")
    got = crc32(bytes(b[:end])) & 0xFFFFFFFF
    if want != got:
        raise FormatError("compact batch CRC mismatch: payload says %08x, computed %08x" % (want, got))
    if b[1] != BATCH_VERSION:
        raise FormatError("compact batch version %d, expected %d" % (b[1], BATCH_VERSION))
    n, i = get_uvarint(b, 2, end)
    if i + n > end:
        raise FormatError("truncated device id")
    dev = bytes(b[i : i + n]).decode()
    i += n
    seq0, i = get_uvarint(b, i, end)
    prev_utc, i = get_uvarint(b, i, end)
    prev_mono = None
    prev_boot = None
    expect = seq0
    recs = []
    while i < end:
        h, i = get_uvarint(b, i, end)
        kind = h & 3
        ns = h >> 3
        if h & 4:
            gap, i = get_uvarint(b, i, end)
            expect += gap
        r = {"seq": expect}
        if kind == _KIND_UTC:
            d, i = get_svarint(b, i, end)
            prev_utc += d
            r["ts"] = prev_utc
        else:
            if kind == _KIND_MONO:
                if prev_mono is None:
                    raise FormatError("record %d: monotonic delta without a base" % expect)
                d, i = get_svarint(b, i, end)
                prev_mono += d
            elif kind == _KIND_MONO_BOOT:
                prev_boot, i = get_uvarint(b, i, end)
                prev_mono, i = get_uvarint(b, i, end)
            else:
                raise FormatError("record %d: unknown time kind 3" % expect)
            r["ts"] = None
            r["mono"] = prev_mono
            r["boot"] = prev_boot
        for _ in range(ns):
            if i >= end:
                raise FormatError("record %d: %d samples announced, payload ends" % (expect, ns))
            key, dp, multi, vals, i = _read_sample(b, i, end)
            if multi:
                r[K.name_of(key)] = [_value(v, dp) for v in vals]
            else:
                r[K.name_of(key)] = _value(vals[0], dp)
        recs.append(r)
        expect += 1
    return {"v": BATCH_VERSION, "dev": dev, "seq0": seq0, "recs": recs}


def decode_batch(payload):
    """Either format -> {"v", "dev", "seq0", "recs": [{"seq", "ts", ["mono", "boot"], name: value}]}
    (the shape of the JSON format; a compact batch decodes to what json.loads gives for the JSON
    encoding of the same entries)."""
    b = payload
    if isinstance(b, str):
        b = b.encode()
    if not b:
        raise FormatError("empty payload")
    if b[0] == BATCH_MAGIC:
        return _decode_compact(b)
    if b[0] == 0x7B:  # '{'
        try:
            d = json.loads(b)
        except ValueError as e:
            raise FormatError("bad JSON batch: %s" % e)
        if not isinstance(d, dict) or not isinstance(d.get("recs"), list) or "dev" not in d:
            raise FormatError("JSON batch without dev/recs")
        return d
    raise FormatError("unknown payload (first byte 0x%02x): not a compact (0xf7) or JSON batch" % b[0])


def record_samples(rec_dict):
    """JSON-shaped record -> [(key, value)] (metadata fields left out)."""
    out = []
    for name in rec_dict:
        if name in K.RESERVED:
            continue
        out.append((K.key_of(name), rec_dict[name]))
    return out


# ---------------------------------------------------------------- official text format


def official_value(key, v):
    if isinstance(v, (tuple, list)):
        return ";".join([official_value(key, x) for x in v])
    if isinstance(v, float):
        dp = K.dp_of(key)
        return fmt_scaled(scale(v, K.UNKNOWN_FLOAT_DP if dp is None else dp), K.UNKNOWN_FLOAT_DP if dp is None else dp)
    if isinstance(v, bool):
        return "1" if v else "0"
    return str(v)


def official_text(device_id, record_samples):
    """The official telelogger datagram for one record: `<devid>#<PIDhex>:<val>[;v2;v3],...*<XX>`
    where XX is the 8-bit sum of all preceding bytes in hex (%X). record_samples: [(key, value)],
    in order (the official firmware puts (0, millis) first)."""
    parts = []
    for key, v in record_samples:
        parts.append("%X:%s" % (key, official_value(key, v)))
    body = ("%s#%s" % (device_id, ",".join(parts))).encode()
    s = 0
    for c in body:
        s += c
    return body + ("*%X" % (s & 0xFF)).encode()
