"""`make sim` end to end, short: broker, SIM7600 simulator, elm327-emulator, GNSS replay and the
telelogger under the host MicroPython, with a network cut in the middle; checks the trip report.

The simulated modem starts switched OFF, as after a cold plug-in: the firmware must press its power key
(run_host.py --power-key: the host board writes the pin to a file the simulator follows)."""
import json
import os
import struct
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The firmware's heap in these runs. The budget is 96K (issue 9, run_host's default); until the RAM work is
# merged the telelogger does not fit there, so these runs say what they use: set SIM_TEST_HEAP=96K to check it.
HEAP = os.environ.get("SIM_TEST_HEAP", "256K")


def _sim(tmp_path, *args, timeout=300):
    out = tmp_path / "sim-out"
    p = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "sim.py"), "--out", str(out), "--heap", HEAP]
                       + list(args), capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    log = p.stdout + p.stderr
    assert p.returncode == 0, log[-4000:]
    return log, json.load(open(out / "summary.json")), out


def _delivered_and_nothing_stuck(s):
    assert s["records_received"] == s["records_expected"] == s["records_stored"], s
    assert s["still_queued"] == 0, s  # stuck in the queue is not delivered (trip_report's `lost` hides it)
    assert s["lost"] == 0 and s["missing"] == 0 and s["undecodable"] == 0, s
    assert s["data_before_prompt"] == 0 and s["simulator_bugs"] == 0, s


def _started_from_a_switched_off_modem(s):
    assert s["modem_started"] == "off", s
    assert s["power_key_presses"] >= 1 and s["modem_boots"] >= 1, s  # the firmware switched it on


def test_sim_short_run_with_network_cut(tmp_path):
    log, s, out = _sim(tmp_path, "--duration", "20", "--cut-network", "9:5", "--drain", "40")  # cut once up
    assert "cutting the network" in log
    assert "received" in log  # live progress lines
    assert s["records_stored"] >= 8, s
    _delivered_and_nothing_stuck(s)
    _started_from_a_switched_off_modem(s)
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
    inside a reply, the modem rebooting, the broker down) at random times; nothing may be lost, and
    every kind must really have been applied (a fault that finds nothing to act on is retried)."""
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    import sim as S

    log, s, out = _sim(tmp_path, "--duration", "30", "--faults", str(len(S.FAULTS)), "--seed", "11", "--drain", "60",
                       "--broker", "mosquitto")
    assert s["faults_skipped"] == [], s
    assert sorted(s["faults"]) == sorted(S.FAULTS), s
    assert s["records_stored"] >= 20, s
    _delivered_and_nothing_stuck(s)
    _started_from_a_switched_off_modem(s)
    assert s["reconnects"] >= 3, s


def test_sim_real_module_timings_modem_gnss_and_an_unasked_rdy(tmp_path):
    """Time scale 1 (the module's own boot, registration and CMQTT delays), GNSS from the modem (the shipped
    default) and the module rebooting on its own once (RDY unasked, which also switches its GNSS off): the
    firmware brings it up again, GNSS included (issue 10 #2), and loses nothing."""
    log, s, out = _sim(tmp_path, "--duration", "75", "--time-scale", "1", "--gnss", "modem", "--faults", "1",
                       "--fault-kinds", "modem_reboot", "--seed", "14", "--drain", "90", timeout=480)
    assert s["faults"] == ["modem_reboot"], s
    assert s["modem_boots"] >= 2, s  # switched on by the key, then the unasked reboot
    _delivered_and_nothing_stuck(s)
    _started_from_a_switched_off_modem(s)
    assert s["gnss_fixes"] > 0, s
    recs = sorted((json.loads(line) for line in open(out / "records.jsonl")), key=lambda r: r["seq"])
    assert any(r.get("lat") is not None for r in recs), "no position from the modem's GNSS"
    # seed 14: the reboot comes 10.4 s (x0.75) after the first publish (~18 s), ~26 s into the run; the module
    # is up again ~16 s later: the last records, taken well after that, must have positions again (GNSS
    # re-enabled after RDY)
    tail = recs[-5:]
    assert tail and all(r.get("lat") is not None for r in tail), tail
