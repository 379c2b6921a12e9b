"""`make sim` end to end, short: broker, SIM7600 simulator, elm327-emulator, GNSS replay and the
telelogger under the host MicroPython, with a network cut in the middle; checks the trip report."""
import json
import os
import struct
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_sim_short_run_with_network_cut(tmp_path):
    out = tmp_path / "sim-out"
    p = subprocess.run(
        [sys.executable, os.path.join(ROOT, "scripts", "sim.py"), "--duration", "15", "--cut-network", "4:5",
         "--out", str(out), "--drain", "40"],
        capture_output=True, text=True, timeout=240, cwd=ROOT,
    )
    log = p.stdout + p.stderr
    assert p.returncode == 0, log[-4000:]
    assert "cutting the network" in log
    assert "received" in log  # live progress lines
    s = json.load(open(out / "summary.json"))
    assert s["records_stored"] >= 8, s
    assert s["records_received"] == s["records_expected"] == s["records_stored"], s
    assert s["lost"] == 0 and s["missing"] == 0 and s["undecodable"] == 0, s
    assert s["out_of_order"] == 0, s
    assert s["reconnects"] >= 1, s  # the cut was noticed and recovered from
    assert s["bytes_per_sample"] and 0 < s["bytes_per_sample"] < 20, s
    assert s["obd_reads"] > 0 and s["gnss_fixes"] > 0, s
    png = out / "trip.png"
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    w, h = struct.unpack(">II", data[16:24])
    assert w >= 600 and h >= 300 and len(data) > 20000
    recs = [json.loads(line) for line in open(out / "records.jsonl")]
    assert len({r["seq"] for r in recs}) == s["records_received"]
    assert any(r.get("rpm") is not None for r in recs) and any(r.get("lat") is not None for r in recs)
    assert os.path.getsize(out / "modem.log") > 0


def test_sim_every_fault_kind_under_micropython(tmp_path):
    """The fault soak with the firmware under the real MicroPython interpreter, in real time: one
    fault of every kind (CONNLOST, ping failure, NONET, 11, 14, silence, garbage, a cut line, a URC
    inside a reply, the modem rebooting, the broker down) at random times; nothing may be lost."""
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    import sim as S

    out = tmp_path / "sim-out"
    p = subprocess.run(
        [sys.executable, os.path.join(ROOT, "scripts", "sim.py"), "--duration", "30", "--faults", str(len(S.FAULTS)),
         "--seed", "11", "--out", str(out), "--drain", "60"],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )
    log = p.stdout + p.stderr
    assert p.returncode == 0, log[-4000:]
    s = json.load(open(out / "summary.json"))
    assert sorted(s["faults"] + s["faults_skipped"]) == sorted(S.FAULTS), s
    assert len(s["faults"]) >= len(S.FAULTS) - 2, s  # err11 needs an idle connected client; broker_down mosquitto
    assert s["records_received"] == s["records_expected"] == s["records_stored"] >= 20, s
    assert s["lost"] == 0 and s["missing"] == 0 and s["data_before_prompt"] == 0, s
    assert s["reconnects"] >= 3, s
