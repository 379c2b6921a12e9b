# telelogger.encode on both runtimes: records, compact/JSON batches, official text format.
import json

from mptest import raises
from telelogger import encode as E
from telelogger import keys as K

T0 = 1700000000123


def _close(a, b, eps=1e-9):
    if isinstance(a, list):
        return len(a) == len(b) and all(_close(x, y, eps) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        return abs(a - b) <= eps * max(1.0, abs(a))
    return a == b


def test_varints_round_trip():
    for v in (0, 1, 63, 64, 127, 128, 300, 16383, 16384, 2**32 - 1, 2**45 + 7):
        b = bytearray()
        E.put_uvarint(b, v)
        assert E.get_uvarint(b, 0) == (v, len(b))
    for v in (0, -1, 1, -64, 64, -65, -123456789, 2**40):
        b = bytearray()
        E.put_svarint(b, v)
        assert E.get_svarint(b, 0) == (v, len(b))
    b = bytearray()
    E.put_svarint(b, -1)
    assert bytes(b) == b"\x01"  # zigzag: small negatives are one byte
    raises(E.FormatError, E.get_uvarint, b"\x80\x80", 0)


def test_scale_exact_decimals_and_rounding():
    assert E.scale("47.123456", 6) == 47123456
    assert E.scale("-122.4194155", 6) == -122419416  # 7th decimal rounds half away from zero
    assert E.scale(12.345, 2) in (1234, 1235)  # binary float: either neighbour is fine
    assert E.scale(-0.5, 0) == -1
    assert E.scale(7, 2) == 700
    assert E.scale(True, 0) == 1
    raises(ValueError, E.scale, "12,5", 1)
    raises(ValueError, E.scale, float("nan"), 1)
    assert E.fmt_scaled(-5, 2) == "-0.05"
    assert E.fmt_scaled(123456789, 6) == "123.456789"


def test_record_round_trip_floats_negatives_tuples():
    samples = [
        (K.obd_key(0x0C), 2150),
        (K.obd_key(0x05), -12),  # coolant below zero
        (0x0A, "-33.865143"),
        (0x0B, 151.209900),
        (0x20, (0.01, -0.98, 0.05)),  # accelerometer x;y;z
        (0x24, 12.6),
        (0x81, -87),
        (0x1A6, 3.25),  # unknown key, float: explicit decimals
        (0x1A7, [1, 2]),
    ]
    rec = E.encode_record(T0, True, samples)
    d = E.decode_record(rec)
    assert d["utc"] and d["ts"] == T0 and d["boot"] is None
    got = d["samples"]
    assert [k for k, _ in got] == [k for k, _ in samples]
    want = [2150, -12, -33.865143, 151.2099, [0.01, -0.98, 0.05], 12.6, -87, 3.25, [1, 2]]
    for (k, v), w in zip(got, want):
        assert _close(v, w), (k, v, w)
    assert isinstance(got[0][1], int)


def test_monotonic_record_keeps_boot():
    rec = E.encode_record(4321, False, [(K.obd_key(0x0D), 50)], boot=7)
    d = E.decode_record(rec)
    assert not d["utc"] and d["ts"] == 4321 and d["boot"] == 7


def test_bad_samples_rejected():
    raises(ValueError, E.encode_record, T0, True, [(0x20, (1, 2, 3, 4, 5))])
    raises(ValueError, E.encode_record, T0, True, [(0x24, "abc")])
    raises(ValueError, E.encode_record, T0, True, [("rpm", 1)])
    raises(ValueError, E.encode_record, T0, True, [(0x24, None)])


def _entries():
    return [
        (100, E.encode_record(T0, True, [(0x10C, 900), (0x10D, 0), (0x24, 12.41)])),
        (101, E.encode_record(T0 + 1000, True, [(0x10C, 1500), (0x10D, 12), (0x0A, "51.477928"), (0x0B, "-0.001545")])),
        (104, E.encode_record(T0 + 990, True, [(0x20, (0.0, 0.02, 1.01))])),  # gap in seqs, clock stepped back
        (105, E.encode_record(5000, False, [(0x10C, 800)], boot=3)),
        (106, E.encode_record(6000, False, [(0x10C, 820)], boot=3)),
        (107, E.encode_record(700, False, [(0x10C, 830)], boot=4)),
    ]


def test_compact_decodes_to_the_json_encoding():
    ents = _entries()
    for off in (None, 1699990000000, {3: 1699990000000}):
        c = E.encode_batch("DEV01", ents, "compact", utc_offset_ms=off)
        j = E.encode_batch("DEV01", ents, "json", utc_offset_ms=off)
        assert c[0] == E.BATCH_MAGIC
        dj = json.loads(j)
        dc = E.decode_batch(c)
        assert dc == dj, (dc, dj)
        assert E.decode_batch(j) == dj
        assert [r["seq"] for r in dc["recs"]] == [100, 101, 104, 105, 106, 107]
        assert dc["dev"] == "DEV01" and dc["seq0"] == 100
        assert len(c) < len(j) / 2


def test_utc_offset_applies_per_boot():
    ents = _entries()
    d = E.decode_batch(E.encode_batch("D", ents, "compact", utc_offset_ms=1000, boot=3))
    r = d["recs"]
    assert r[3]["ts"] == 6000 and "mono" not in r[3]
    assert r[4]["ts"] == 7000
    assert r[5]["ts"] is None and r[5]["mono"] == 700 and r[5]["boot"] == 4  # other boot: unknown
    d = E.decode_batch(E.encode_batch("D", ents, "json"))
    assert d["recs"][3]["ts"] is None and d["recs"][3]["mono"] == 5000 and d["recs"][3]["boot"] == 3
    assert d["recs"][2]["ts"] == T0 + 990


def test_json_batch_is_readable_with_exact_decimals():
    ents = _entries()
    j = E.encode_batch("DEV01", ents, "json")
    assert b'"lat":51.477928' in j and b'"lng":-0.001545' in j
    assert b'"battery":12.41' in j
    d = json.loads(j)
    assert d["recs"][0]["rpm"] == 900 and d["recs"][2]["acc"] == [0.0, 0.02, 1.01]


def test_compact_corruption_detected():
    c = bytearray(E.encode_batch("DEV01", _entries(), "compact"))
    c[10] ^= 1
    e = raises(E.FormatError, E.decode_batch, bytes(c))
    assert "CRC" in str(e)
    raises(E.FormatError, E.decode_batch, b"")
    raises(E.FormatError, E.decode_batch, b"hello")
    raises(E.FormatError, E.decode_batch, b"{not json")


def test_compact_batch_refuses_a_damaged_record():
    """encode_batch counts each record's samples (their values skipped, not decoded): a record whose
    samples do not add up is refused, saying what broke, not sent."""
    rec = E.encode_record(T0, True, [(0x10C, 1800), (0x200, (1, 2, 3)), (0x201, 1.5)])
    assert E.encode_batch("D", [(1, rec)], "compact")  # the whole record is fine
    i = 1 + len(_uv(T0))  # the first sample's key
    cases = (
        (rec[:-1], "truncated varint"),  # the last value cut
        (rec[:i] + _uv(0x201 << 1 | 1), "truncated sample"),  # a key whose ext byte is missing
        (rec[:i] + bytes((0x81, 0x04, 0xA8, 0x02)), "decimals"),  # key 0x100 with an ext byte of 10 decimals
        (rec[:i] + b"\x80" * 11 + b"\x01", "varint too long"),
    )
    for bad, why in cases:
        e = raises(E.FormatError, E.encode_batch, "D", [(1, bytes(bad))], "compact")
        assert why in str(e), (why, str(e))


def _uv(v):
    b = bytearray()
    E.put_uvarint(b, v)
    return b


def test_empty_batch():
    for fmt in ("compact", "json"):
        d = E.decode_batch(E.encode_batch("X", [], fmt))
        assert d["recs"] == []
    raises(ValueError, E.encode_batch, "X", [], "xml")


def test_official_text_matches_real_packet():
    samples = [(0, 35822), (0x24, 365), (0x20, (0, 0, 0)), (0x10, 22542203), (0x82, 43)]
    assert E.official_text("UCFLFAYM", samples) == b"UCFLFAYM#0:35822,24:365,20:0;0;0,10:22542203,82:43*B2"


def test_official_text_checksum_is_sum_of_preceding_bytes():
    t = E.official_text("ABC", [(0x10C, 2000), (0x0A, 47.5)])
    body, cs = t.split(b"*")
    s = 0
    for c in body:
        s += c
    assert int(cs, 16) == s & 0xFF
    assert body == b"ABC#10C:2000,A:47.500000"


def test_names_round_trip():
    for k in (0x10C, 0x0A, 0x24, 0x1A6):
        assert K.key_of(K.name_of(k)) == k
    raises(KeyError, K.key_of, "nonsense")
    names = [K.KEYS[k][0] for k in K.KEYS]
    assert len(set(names)) == len(names)
    for r in K.RESERVED:
        assert r not in names


# ---- golden vectors, written by hand from telelogger/FORMAT.md (not produced by this encoder)
def _hex(s):
    return bytes(int(x, 16) for x in s.split())


GOLD_REC_UTC = _hex("11 fb d0 95 ff bc 31 98 04 cc 21")  # UTC 1700000000123, rpm 2150 (FORMAT.md example)
GOLD_REC_MONO = _hex("01 03 88 27 98 04 c0 0c")  # boot 3, mono 5000 ms, rpm 800
GOLD_BATCH = _hex("f7 01 04 43 41 52 31 64 fb d0 95 ff bc 31 08 00 98 04 cc 21 0a 03 88 27 98 04 c0 0c"
                  " bf 87 4f 0e")  # CAR1, seq0 100: the two records above, CRC32 LE at the end
GOLD_JSON = (b'{"v":1,"dev":"CAR1","seq0":100,"recs":[{"seq":100,"ts":1700000000123,"rpm":2150},'
             b'{"seq":101,"ts":null,"mono":5000,"boot":3,"rpm":800}]}')


def test_golden_records_and_batches():
    assert E.encode_record(T0, True, [(0x10C, 2150)]) == GOLD_REC_UTC
    assert E.encode_record(5000, False, [(0x10C, 800)], 3) == GOLD_REC_MONO
    entries = [(100, GOLD_REC_UTC), (101, GOLD_REC_MONO)]
    assert E.encode_batch("CAR1", entries, "compact") == GOLD_BATCH
    assert E.encode_batch("CAR1", entries, "json") == GOLD_JSON
    assert E.decode_batch(GOLD_BATCH) == json.loads(GOLD_JSON)
    # the UTC offset of boot 3 turns the monotonic record into kind 0: delta -5123 ms = svarint 10245
    b = E.encode_batch("CAR1", entries, "compact", {3: T0 - 10123})
    assert b[14:-4] == _hex("08 00 98 04 cc 21 08 85 50 98 04 c0 0c"), b  # after the 14-byte header
    assert E.decode_batch(b)["recs"][1]["ts"] == T0 - 5123
