# Batches of the telelogger (byte-level layout: telelogger/FORMAT.md): what goes on the wire,
# "compact" (binary, varints, CRC32) or "json" (telelogger/encjson.py, imported when a JSON batch
# is first built). Records: telelogger/record.py (its names are importable from here too).
#
# RAM: the device imports this module and record.py (and encjson.py for "json"). The key table
# (keys.py) is read once for its decimal places and unloaded again. Decoding and the official
# text format are for tools and tests: telelogger/decode.py, which the device never imports
# (encode.decode_batch, .decode_record, .record_samples, .official_text, .official_value and
# .fmt_scaled still work: they are looked up there on first use).
from binascii import crc32  # every port we run on has it (ESP32, unix, CPython)

from telelogger.record import (_KIND_MONO, _KIND_MONO_BOOT, _KIND_UTC, BATCH_MAGIC, BATCH_VERSION,  # noqa: F401
                               MAX_VALUES, RECORD_VERSION, FormatError, _iter_samples, _offset_for, _read_sample,
                               _record_head, _sample_span, _times, dp_of, encode_record, get_svarint, get_uvarint,
                               put_svarint, put_uvarint, scale)


def encode_batch(device_id, entries, fmt, utc_offset_ms=None, boot=None):
    """entries: [(seq, record_bytes)] oldest first. fmt "compact" or "json".
    utc_offset_ms: None, an int (UTC ms = mono ms + offset) for records of boot `boot` (all
    monotonic records when boot is None), or a dict {boot: offset}. Monotonic records whose
    boot has no offset stay monotonic (JSON: "ts": null plus "mono" and "boot")."""
    if fmt == "compact":
        return _encode_compact(device_id, entries, utc_offset_ms, boot)
    if fmt == "json":
        from telelogger.encjson import encode_json

        return encode_json(device_id, entries, utc_offset_ms, boot)
    raise ValueError("unknown batch format %r (compact|json)" % (fmt,))


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


_DECODE_NAMES = ("decode_batch", "decode_record", "record_samples", "official_text", "official_value", "fmt_scaled")


def __getattr__(name):
    """Tool-side names, kept importable from here: telelogger/decode.py (never on the device)."""
    if name in _DECODE_NAMES:
        from telelogger import decode

        return getattr(decode, name)
    raise AttributeError(name)
