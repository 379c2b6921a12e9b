"""`make sim` end to end, short: broker, SIM7600 simulator, elm327-emulator, GNSS replay and the
telelogger under the host MicroPython, with a network cut in the middle; checks the trip report.

The simulated modem starts switched OFF, as after a cold plug-in: the firmware must press its power key
(run_host.py --power-key: the host board writes the pin to a file the simulator follows)."""
import json
import os
import re
import struct
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The firmware's heap in these runs: make sim's (sim.SIM_HEAP, 144K; the entry path needs 98K without faults, the
# recovery from the cut 100K, all three runs here passed at 128K: see sim.py). The budget is 96K (issue 9, run_host's
# default), not met yet: set SIM_TEST_HEAP=96K to check it.
HEAP = os.environ.get("SIM_TEST_HEAP", "144K")


# The entry path's heap guard (issue 9's one memory check until the 96K budget is met): the device default (modem
# GNSS, no AT log) from a switched-off modem, no faults, at ENTRY_HEAP: 16K over the smallest heap it passed (98K,
# make bench's row "entry", 32-bit). A change that costs the boot or the first connect that much fails here, not in a
# car. SIM_ENTRY_HEAP=96K checks the budget itself.
ENTRY_HEAP = os.environ.get("SIM_ENTRY_HEAP", "114K")


def _sim(tmp_path, *args, timeout=300, heap=HEAP):
    out = tmp_path / "sim-out"
    p = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "sim.py"), "--out", str(out), "--heap", heap]
                       + list(args), capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    log = p.stdout + p.stderr
    assert p.returncode == 0, log[-4000:]
    return log, json.load(open(out / "summary.json")), out


def _delivered_and_nothing_stuck(s):
    assert s["records_received"] == s["records_expected"] == s["records_stored"], s
    assert s["still_queued"] == 0, s  # stuck in the queue is not delivered (trip_report's `lost` hides it)
    assert s["lost"] == 0 and s["missing"] == 0 and s["undecodable"] == 0, s
    assert s["data_before_prompt"] == 0 and s["simulator_bugs"] == 0, s


def _doctor_blames_the_faults_not_the_firmware(log, s, out):
    """The doctor on make sim's own AT log: its headline is printed, nothing the firmware did wrong (a host
    mistake no injected cut/fault explains), and summary.txt's counts are the doctor's."""
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    from atdoctor import diagnose

    d = diagnose((out / "at.log").read_bytes(), source=str(out / "at.log"))
    assert "doctor: %s" % d.headline() in log, log[-3000:]
    assert s["doctor"] == d.headline(), s
    assert s["doctor_firmware_caused"] == [], "\n".join(s["doctor_firmware_caused"]) + "\n" + log[-3000:]
    assert "NOT explained by anything injected" not in log, log[-3000:]
    k = d.counts()
    assert (s["doctor_host_mistakes"], s["doctor_network_events"], s["doctor_module_events"]) == (
        k["host"], k["network"], k["module"]), s
    assert s["modem_errors"] == d.summary()["failed_commands"], s
    txt = (out / "summary.txt").read_text().splitlines()
    assert txt[0] == s["verdict"] and txt[0].startswith("OK: every record reached the broker"), txt[:3]
    assert "modem_errors         %d" % s["modem_errors"] in txt, txt
    return d


def _live_lines_are_readable(log):
    """The live line counts in travel order at one moment (received never ahead of stored), and nothing in
    the output is a raw dict, a float with 15 digits or a bare recovery level."""
    rows = re.findall(r"stored (\d+), queued (\d+), published (\d+), received (\d+)", log)
    assert len(rows) >= 5, log[-3000:]
    for stored, queued, published, received in rows:
        assert int(received) <= int(stored) and int(published) + int(queued) <= int(stored), (stored, queued, published, received)
    assert not re.search(r"\d\.\d{8,}", log), re.search(r".*\d\.\d{8,}.*", log).group(0)
    assert "{'" not in log, re.search(r".*\{'.*", log).group(0)
    assert not re.search(r"\(level \d\)", log), re.search(r".*\(level \d\).*", log).group(0)
    assert re.search(r"\d km/h", log) and re.search(r"battery \d+\.\d V", log), log[-2000:]


def _started_from_a_switched_off_modem(s):
    assert s["modem_started"] == "off", s
    assert s["power_key_presses"] >= 1 and s["modem_boots"] >= 1, s  # the firmware switched it on


def test_sim_entry_path_fits_the_heap_guard(tmp_path):
    log, s, out = _sim(tmp_path, "--gnss", "modem", "--no-at-log", "--duration", "30", heap=ENTRY_HEAP)
    _delivered_and_nothing_stuck(s)
    _started_from_a_switched_off_modem(s)
    assert s["records_received"] >= 10 and s["firmware_exit"] == 0, s
    assert "MicroPython 32-bit" in log, log[:2000]  # the ESP32's word size, not the 64-bit wheel's heap
    fw = (out / "firmware.log").read_text()
    assert "out of memory" not in fw and "MemoryError" not in fw, [ln for ln in fw.splitlines() if "emory" in ln][:5]


def test_sim_short_run_with_network_cut(tmp_path):
    log, s, out = _sim(tmp_path, "--duration", "20", "--cut-network", "9:5", "--drain", "40")  # cut once up
    assert "cutting the network" in log
    _live_lines_are_readable(log)
    _doctor_blames_the_faults_not_the_firmware(log, s, out)
    # the cut's findings are named as its own, and its end is seen
    assert re.search(r"caused by the network cut at 9 s for 5 s \(nonet\): network connection-lost", log), log[-3000:]
    assert re.search(r"network restored after \d+\.\d s", log), log[-3000:]
    assert "network restored after" in s["verdict"] and s["network_restored_s"], s
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
    _live_lines_are_readable(log)
    _doctor_blames_the_faults_not_the_firmware(log, s, out)
    assert re.search(r"caused by the injected fault \w+ at", log), log[-3000:]
    assert s["records_stored"] >= 20, s
    _delivered_and_nothing_stuck(s)
    _started_from_a_switched_off_modem(s)
    # progress's "reconnects" counts only the connects the telelogger's loop made itself; the publisher's own
    # reconnect-and-resend inside publish() is not in it, so how many of the 11 faults it sees depends on their
    # timing (1 or 3 on the same seed, the code before this change too): at least one, and nothing lost
    assert s["reconnects"] >= 1, s


def test_sim_real_module_timings_modem_gnss_and_an_unasked_rdy(tmp_path):
    """Time scale 1 (the module's own boot, registration and CMQTT delays), GNSS from the modem (the shipped
    default) and the module rebooting on its own once (RDY unasked, which also switches its GNSS off): the
    firmware brings it up again, GNSS included (issue 10 #2), and loses nothing."""
    log, s, out = _sim(tmp_path, "--duration", "75", "--time-scale", "1", "--gnss", "modem", "--faults", "1",
                       "--fault-kinds", "modem_reboot", "--seed", "14", "--drain", "90", timeout=480)
    assert s["faults"] == ["modem_reboot"], s
    assert s["modem_boots"] >= 2, s  # switched on by the key, then the unasked reboot
    _doctor_blames_the_faults_not_the_firmware(log, s, out)
    assert re.search(r"caused by the injected fault modem_reboot at [\d.]+ s: module modem-rebooted", log), log[-3000:]
    _delivered_and_nothing_stuck(s)
    _started_from_a_switched_off_modem(s)
    assert s["gnss_fixes"] > 0, s
    recs = sorted((json.loads(line) for line in open(out / "records.jsonl")), key=lambda r: r["seq"])
    assert any(r.get("lat") is not None for r in recs), "no position from the modem's GNSS"
    # seed 14: the reboot comes 10.4 s (x0.75) after the first publish (~18 s), ~26 s into the run; the module
    # is up again ~16 s later: the last records, taken well after that, must have positions again (GNSS
    # re-enabled after RDY). The very last record is the one built at shutdown from what was pending (OBD
    # values, possibly no GNSS sample since the previous record): it is left out.
    # Positions are sampled once per record and the replayed drive runs x6, so the jump filter may drop an
    # odd fix: most, not all, of them carry one. Without GNSS re-enabled after RDY none would.
    tail = recs[-6:-1]
    assert len(tail) == 5 and sum(1 for r in tail if r.get("lat") is not None) >= 3, recs[-6:]
