"""scripts/decode.py: the CLI on files, stdin, hex, JSON lines and a real mosquitto_sub capture."""
import json
import os
import shutil
import subprocess
import sys

import pytest

from peers.broker import MOSQUITTO, Broker
from telelogger import encode as E

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DECODE = os.path.join(ROOT, "scripts", "decode.py")
T0 = 1700000000000


def _entries(seq0=1):
    return [
        (seq0, E.encode_record(T0, True, [(0x10C, 900), (0x0A, "48.858370"), (0x0B, "2.294481"), (0x20, (0.01, -0.02, 1.0))])),
        (seq0 + 1, E.encode_record(T0 + 1000, True, [(0x10C, 1800), (0x24, 13.91), (0x105, -7)])),
        (seq0 + 2, E.encode_record(2500, False, [(0x10D, 30)], boot=2)),
    ]


def _run(args, stdin=b""):
    p = subprocess.run([sys.executable, DECODE] + args, input=stdin, capture_output=True, timeout=60)
    return p.returncode, [json.loads(ln) for ln in p.stdout.decode().splitlines()], p.stderr.decode()


def _check_recs(recs, dev="CAR1", seq0=1, topic=None):
    assert [r["seq"] for r in recs] == [seq0, seq0 + 1, seq0 + 2]
    assert all(r["dev"] == dev for r in recs)
    assert recs[0]["lat"] == 48.85837 and recs[0]["lng"] == 2.294481 and recs[0]["acc"] == [0.01, -0.02, 1.0]
    assert recs[1]["battery"] == 13.91 and recs[1]["coolant_temp"] == -7 and recs[1]["ts"] == T0 + 1000
    assert recs[2]["ts"] is None and recs[2]["mono"] == 2500 and recs[2]["boot"] == 2
    if topic is not None:
        assert all(r["topic"] == topic for r in recs)


@pytest.mark.parametrize("fmt", ["compact", "json"])
def test_file_and_stdin(tmp_path, fmt):
    payload = E.encode_batch("CAR1", _entries(), fmt)
    f = tmp_path / "p.bin"
    f.write_bytes(payload)
    rc, recs, err = _run([str(f)])
    assert rc == 0, err
    _check_recs(recs)
    rc, recs, err = _run(["-"], stdin=payload)
    assert rc == 0, err
    _check_recs(recs)


def test_hex_argument_and_iso():
    payload = E.encode_batch("CAR1", _entries(), "compact")
    rc, recs, err = _run(["--hex", payload.hex(), "--iso"])
    assert rc == 0, err
    _check_recs(recs)
    assert recs[0]["time"] == "2023-11-14T22:13:20.000Z"
    assert "time" not in recs[2]


def test_capture_lines_mixed_and_bad_payload_reported():
    c = E.encode_batch("CAR1", _entries(1), "compact")
    j = E.encode_batch("CAR2", _entries(10), "json")
    bad = bytearray(c)
    bad[8] ^= 0xFF
    capture = b"\n".join(
        [
            b"fm/CAR1/data " + c.hex().encode(),
            b"fm/CAR2/data " + j,
            b"fm/CAR1/data " + bytes(bad).hex().encode(),
            j,
        ]
    )
    rc, recs, err = _run(["-"], stdin=capture + b"\n")
    assert rc == 1
    assert "line 3" in err and "CRC" in err
    _check_recs(recs[0:3], "CAR1", 1, "fm/CAR1/data")
    _check_recs(recs[3:6], "CAR2", 10, "fm/CAR2/data")
    _check_recs(recs[6:9], "CAR2", 10)


def test_garbage_input_fails_clearly(tmp_path):
    f = tmp_path / "x.txt"
    f.write_bytes(b"\x00\x01\x02 not a payload\n")
    rc, recs, err = _run([str(f)])
    assert rc == 1 and recs == [] and "line 1: neither hex nor JSON" in err, err
    rc, recs, err = _run([str(tmp_path / "missing")])
    assert rc == 1 and "missing" in err


def test_user_mistakes_get_one_clear_line():
    for stdin, want in ((b"", "empty input: no payload to decode"),
                        (b"  \n\n", "empty input"),
                        (b"f70\n", "line 1: odd number of hex digits (3)"),
                        (b"fm/CAR1/data f7014\n", "line 1: odd number of hex digits (5)"),
                        (b"fm/CAR1/data\n", "line 1: no payload after the topic"),
                        (b"hello world\n", "line 1: neither hex nor JSON")):
        rc, recs, err = _run(["-"], stdin=stdin)
        assert rc == 1 and recs == [] and want in err and len(err.strip().splitlines()) == 1, (stdin, err)
    rc, recs, err = _run(["--hex", "f70"])
    assert rc == 1 and "odd number of hex digits" in err


def test_units():
    payload = E.encode_batch("CAR1", _entries(), "compact")
    rc, recs, err = _run(["--hex", payload.hex(), "--units"])
    assert rc == 0, err
    assert recs[0]["units"] == {"rpm": "rpm", "lat": "deg", "lng": "deg", "acc": "g (x;y;z)"}
    assert recs[1]["units"]["coolant_temp"] == "C" and recs[1]["units"]["battery"] == "V"


def test_real_mosquitto_capture(tmp_path):
    sub, pub = shutil.which("mosquitto_sub"), shutil.which("mosquitto_pub")
    if not (MOSQUITTO and sub and pub):
        pytest.skip("mosquitto and its clients are not installed")
    b = Broker(workdir=str(tmp_path)).start()
    port = b.port
    try:
        c = tmp_path / "c.bin"
        c.write_bytes(E.encode_batch("CAR1", _entries(1), "compact"))
        j = tmp_path / "j.json"
        j.write_bytes(E.encode_batch("CAR2", _entries(10), "json"))
        for topic, f in (("fm/CAR1/data", c), ("fm/CAR2/data", j)):  # retained: no subscribe race
            subprocess.run([pub, "-p", str(port), "-h", "127.0.0.1", "-t", topic, "-r", "-q", "1", "-f", str(f)], check=True, timeout=30)
        cap = subprocess.run(
            [sub, "-p", str(port), "-h", "127.0.0.1", "-t", "fm/+/data", "-v", "-F", "%t %x", "-C", "2", "-W", "30"],
            capture_output=True,
            check=True,
            timeout=60,
        ).stdout
    finally:
        b.stop()
    rc, recs, err = _run(["-"], stdin=cap)
    assert rc == 0, err
    by_dev = {}
    for r in recs:
        by_dev.setdefault(r["dev"], []).append(r)
    _check_recs(by_dev["CAR1"], "CAR1", 1, "fm/CAR1/data")
    _check_recs(by_dev["CAR2"], "CAR2", 10, "fm/CAR2/data")


def test_obd_names_and_units_are_the_pid_tables():
    """One home per fact: every OBD key in telelogger/keys.py has obdii/pids.py's name and unit."""
    from obdii import pids

    from telelogger import keys

    checked = 0
    for key, (name, _dp, unit) in keys.KEYS.items():
        if key & ~0xFF != keys.OBD_BASE:
            continue
        info = pids.info(key & 0xFF)
        assert info is not None, "keys.py has PID %02X, obdii/pids.py does not" % (key & 0xFF)
        assert (name, unit) == (info[0], info[1]), (hex(key), name, unit, info[:2])
        checked += 1
    assert checked >= 20


def test_device_import_path_has_no_decoder():
    """The encoder, with the JSON format, never pulls in telelogger.decode (tools only) and keeps
    keys.py unloaded once it has read it."""
    code = ("import sys; sys.path.insert(0, 'firmware'); from telelogger import encode; "
            "r = encode.encode_record(1, True, [(0x10C, 900), (0x24, 12.5)]); "
            "b = encode.encode_batch('D', [(1, r)], 'compact') + encode.encode_batch('D', [(1, r)], 'json'); "
            "print(sorted(m for m in sys.modules if m.startswith('telelogger')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    assert eval(out) == ["telelogger", "telelogger.encjson", "telelogger.encode", "telelogger.record", "telelogger.tasks"], out


# ---- an independent reader of the compact format, written from telelogger/FORMAT.md alone
# (it shares no code with firmware/telelogger: its own varints, CRC from zlib, its own dp table
# for the keys used below)
def _uv(b, i):
    v = shift = 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7F) << shift
        if c < 0x80:
            return v, i
        shift += 7


def _sv(b, i):
    z, i = _uv(b, i)
    return (z >> 1) ^ -(z & 1), i


_DP = {0x10C: 0, 0x10D: 0, 0x105: 0, 0x0A: 6, 0x0B: 6, 0x20: 2, 0x24: 2}  # FORMAT.md / CONFIG keys table


def read_compact(b):
    import zlib

    assert b[0] == 0xF7 and b[1] == 1
    assert int.from_bytes(b[-4:], "little") == zlib.crc32(b[:-4])
    n, i = _uv(b, 2)
    dev = b[i : i + n].decode()
    i += n
    seq, i = _uv(b, i)
    utc, i = _uv(b, i)
    mono = boot = None
    end = len(b) - 4
    out = []
    while i < end:
        h, i = _uv(b, i)
        kind, ns = h & 3, h >> 3
        if h & 4:
            gap, i = _uv(b, i)
            seq += gap
        if kind == 0:
            d, i = _sv(b, i)
            utc += d
            when = ("utc", utc)
        elif kind == 1:
            d, i = _sv(b, i)
            mono += d
            when = ("mono", boot, mono)
        else:
            assert kind == 2
            boot, i = _uv(b, i)
            mono, i = _uv(b, i)
            when = ("mono", boot, mono)
        samples = []
        for _ in range(ns):
            kx, i = _uv(b, i)
            key, count, tup, dp = kx >> 1, 1, False, _DP[kx >> 1]
            if kx & 1:
                e = b[i]
                i += 1
                count, tup = (e & 3) + 1, bool(e & 4)
                if e & 8:
                    dp = e >> 4
            vals = []
            for _ in range(count):
                v, i = _sv(b, i)
                vals.append(v / 10 ** dp if dp else v)
            samples.append((key, vals if tup else vals[0]))
        out.append((seq, when, samples))
        seq += 1
    assert i == end
    return dev, out


def test_independent_reader_agrees_with_the_encoder():
    entries = _entries(seq0=40) + [(45, E.encode_record(3000, False, [(0x10D, 31), (0x24, 12.6)], boot=2)),
                                    (46, E.encode_record(1000, False, [(0x10C, 700)], boot=3))]
    dev, recs = read_compact(E.encode_batch("CAR1", entries, "compact"))
    assert dev == "CAR1"
    assert [r[0] for r in recs] == [40, 41, 42, 45, 46]  # the gap 43..44 is carried
    assert recs[0][1] == ("utc", T0) and recs[1][1] == ("utc", T0 + 1000)
    assert recs[2][1] == ("mono", 2, 2500) and recs[3][1] == ("mono", 2, 3000) and recs[4][1] == ("mono", 3, 1000)
    s0 = dict(recs[0][2])
    assert s0[0x10C] == 900 and s0[0x0A] == 48.85837 and s0[0x0B] == 2.294481 and s0[0x20] == [0.01, -0.02, 1.0]
    assert dict(recs[1][2]) == {0x10C: 1800, 0x24: 13.91, 0x105: -7}
    assert dict(recs[3][2]) == {0x10D: 31, 0x24: 12.6}


def test_trip_report_stuck_records_are_not_delivered():
    """scripts/trip_report.py: records still queued on the device are undelivered, not OK."""
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    from trip_report import summarize

    recs = [{"seq": s, "ts": T0 + s * 1000, "rpm": 800} for s in range(1, 11)]
    ok = summarize(recs)
    assert ok["verdict"].startswith("OK") and ok["undelivered"] == 0
    stuck = summarize(recs[:7], expected_last_seq=10, still_queued=3)
    assert stuck["lost"] == 0 and stuck["undelivered"] == 3 and stuck["verdict"].startswith("FAIL"), stuck
    assert "still queued" in stuck["verdict"]
    lost = summarize(recs[:5], expected_last_seq=10, still_queued=2)
    assert lost["lost"] == 3 and "3 records lost" in lost["verdict"] and "2 more still queued" in lost["verdict"]
    assert summarize([], expected_last_seq=3)["verdict"] == "FAIL: no record reached the broker"
