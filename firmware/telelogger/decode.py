# Decoding of telelogger records and batches (both formats, telelogger/FORMAT.md) and the
# official Freematics text format, for tools and tests (scripts/decode.py, make sim, benches).
# The device never imports this module.
import json

from binascii import crc32

from telelogger import keys as K
from telelogger.encjson import fmt_scaled
from telelogger.record import (_KIND_MONO, _KIND_MONO_BOOT, _KIND_UTC, BATCH_MAGIC, BATCH_VERSION,  # noqa: F401
                               FormatError, _read_sample, _record_head, get_svarint, get_uvarint,
                               scale)


def _value(v, dp):
    if dp == 0:
        return v
    return float(fmt_scaled(v, dp))  # same parser as json.loads: identical floats


def decode_record(rec):
    """-> {"utc": bool, "ts": ms, "boot": int|None, "samples": [(key, value)]}; values are
    int (0 decimals), float, or list for tuples."""
    utc, boot, ts, i = _record_head(rec)
    out = []
    while i < len(rec):
        key, dp, multi, vals, i = _read_sample(rec, i, len(rec))
        if multi:
            out.append((key, [_value(v, dp) for v in vals]))
        else:
            out.append((key, _value(vals[0], dp)))
    return {"utc": utc, "ts": ts, "boot": boot, "samples": out}


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
