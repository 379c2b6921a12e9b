"""What `make sim` prints and writes, without running it: the live line, the firmware's messages made
readable, the doctor's findings split into what the injected faults caused and what the firmware did,
the summary's verdict, and trip.png's panels (issue 13 section 6, issue 12 section 1)."""
import json
import os
import re
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))

import sim as S  # noqa: E402
import trip_report as T  # noqa: E402


def test_live_line_counts_in_travel_order_with_units():
    p = {"records": 25, "sent": 20, "queued": 5, "reconnects": 1, "connected": True, "rpm": 1975.5, "speed": 16,
         "lat": -37.815471, "lng": 144.960741, "voltage": 13.14, "signal": -73}
    line = S.fmt_progress(36.0, p, 20)
    assert line.index("stored 25") < line.index("queued 5") < line.index("published 20") < line.index("received 20")
    assert "rpm 1976" in line and "16 km/h" in line and "13.1 V" in line and "-73 dBm" in line
    assert "awaiting PUBACK" not in line
    # one batch at the subscriber before its PUBACK reached the device: said, not a miscount
    assert "(5 awaiting PUBACK)" in S.fmt_progress(36.0, p, 25)
    assert "(offline)" in S.fmt_progress(1.0, dict(p, connected=False), 20)
    assert "no progress yet" in S.fmt_progress(1.0, {}, 0)


def test_received_is_counted_at_the_snapshot_time(tmp_path):
    class Msg:
        topic = "freematics/X/data"

    sub = S.Subscriber.__new__(S.Subscriber)  # no broker: only its bookkeeping
    import threading

    sub.lock, sub.records, sub.seen, sub.errors, sub.t0 = threading.Lock(), [], set(), 0, 0.0
    sub.records = [{"seq": 1, "_rx": 10.0}, {"seq": 2, "_rx": 10.0}, {"seq": 3, "_rx": 14.0}, {"seq": 3, "_rx": 15.0}]
    sub.seen = {1, 2, 3}
    assert sub.received() == 3
    assert sub.received(12.0) == 2  # a snapshot taken at 12 s is compared with what had arrived by then
    assert sub.received(9.0) == 0


def test_firmware_messages_without_raw_dicts_long_floats_or_bare_levels():
    up = ("modem SIMCOM_SIM7600E rev LE11B02 up: {'time': (2026, 12, 2, 8, 15, 48, 40), 'sim': 'READY', "
          "'cpsi': {'system': 'LTE', 'rsrp': -118.5, 'rssi': -78.90000000000001, 'band': 'EUTRAN-BAND3', "
          "'operator': '505-01', 'rsrq': -17.8}, 'reg': (1, 1, 1), 'signal_dbm': -73}")
    out = S.readable(up)
    assert "{" not in out and "'" not in out, out
    assert "RSSI -78.9 dBm" in out and "RSRP -118.5 dBm" in out and "RSRQ -17.8 dB" in out, out
    assert "signal -73 dBm" in out and "operator 505-01" in out, out
    assert "module clock 2026-12-02 08:15:48 UTC+10:00" in out and "CEREG home" in out, out
    out = S.readable("connect attempt 2 (level 2) failed: CMQTTSTART failed (error 7: network open fail)")
    assert "(recovery level 2: restart the MQTT service)" in out, out
    assert S.readable("x 0.30000000000000004 y") == "x 0.3 y"
    assert S.readable("connected; 0 records queued") == "connected; 0 records queued"


class F:
    def __init__(self, fid, kind, severity, evidence, data=None):
        self.id, self.kind, self.severity, self.evidence, self.title = fid, kind, severity, evidence, fid
        self.data = data or {}


class D:
    def __init__(self, findings):
        self.findings = findings


def test_findings_in_a_cut_or_fault_window_are_the_faults_others_the_firmwares():
    w = S.fault_windows(11.8, [(20.0, 15.0)], "nonet", [(55.0, "garbage")], 66.0)
    d = D([
        F("command-failed", "module", "warning", ["SENT@5761 AT+CPIN?", "RECV@5763 +CME ERROR: SIM busy"]),
        F("command-failed", "host", "warning", ["SENT@19986 AT+CMQTTCONNECT=0", "RECV@19990 OK"]),
        F("connection-lost", "network", "warning", ["RECV@20100 +CMQTTNONET"], {"restored": True}),
        F("connection-lost", "network", "warning", ["SENT@15000 AT+CMQTTSUB", "RECV@21000 +CMQTTNONET"]),
        F("echo", "host", "warning", ["SENT@3000 AT", "RECV@14000 AT"]),  # from the cold start past its end
        F("bad-echo", "host", "error", ["SENT@55500 AT+CMQTTPUB"]),
        F("unexpected", "host", "error", ["SENT@49000 AT+FOO"]),  # after the cut and its grace, before the fault
        F("no-evidence", "host", "warning", []),
    ])
    explained, own = S.attribute(d, w, 0.5)
    causes = {f.evidence[0] if f.evidence else "": c for f, c in explained}
    assert causes["SENT@5761 AT+CPIN?"] == S.COLD_START
    assert causes["SENT@19986 AT+CMQTTCONNECT=0"].startswith("the network cut at 20 s for 15 s")
    assert causes["RECV@20100 +CMQTTNONET"].startswith("the network cut")
    assert causes["SENT@55500 AT+CMQTTPUB"].startswith("the injected fault garbage at 55.0 s")
    assert causes["SENT@15000 AT+CMQTTSUB"].startswith("the network cut")  # ends in the cut
    assert [f.id for f in own] == ["echo", "unexpected", "no-evidence"]


def test_doctor_report_on_a_log_prints_headline_attribution_and_restoration(tmp_path, capsys):
    log = tmp_path / "at.log"
    log.write_text(
        "=== SENT@100 ===\nAT\n==================\n=== RECV@102 ===\nAT\r\nOK\r\n==================\n"
        "=== SENT@20000 ===\nAT+CMQTTPUB=0,1,60\n==================\n=== RECV@20003 ===\n\r\n+CMQTTNONET\r\n"
        "==================\n=== SENT@30000 ===\nAT+CMQTTSTART\n==================\n=== RECV@30003 ===\n"
        "OK\r\n\r\n+CMQTTSTART: 0\r\n==================\n")
    w = S.fault_windows(5.0, [(19.5, 10.0)], "nonet", [], 40.0)
    doc = S.doctor_report(str(log), w, 0.0)
    out = capsys.readouterr().out
    assert doc["doctor"] in out and doc["doctor"].startswith("1 host mistake, 1 network event"), out
    # the CMQTTNONET lies in the cut; the echo left on at the start is the host's own, cold start or not
    assert "caused by the network cut at 20 s for 10 s (nonet): network connection-lost" in out, out
    assert doc["doctor_firmware_caused"] == ["warning echo-on: command echo left on"], doc
    assert "NOT explained by anything injected - the firmware's own: host echo-on" in out, out
    assert "1 connection loss(es) not restored before the log ends" in out and "network restored after" not in out, out
    assert doc["modem_errors"] == 0 and doc["network_restored_s"] == [], doc


def test_verdict_names_the_reason():
    recs = [{"seq": i, "ts": 1000 * i} for i in (1, 2, 3)]
    assert T.summarize(recs, 3)["verdict"] == "OK: every record reached the broker"
    assert T.summarize(recs, 3, notes=["network restored after 15.1 s"])["verdict"] == \
        "OK: every record reached the broker (network restored after 15.1 s)"
    assert T.summarize(recs, 5, still_queued=2)["verdict"] == "FAIL: 2 records still queued on the device, not delivered"
    assert T.summarize(recs, 6, still_queued=1)["verdict"] == "FAIL: 2 records lost, 1 more still queued on the device"
    v = T.summarize(recs, 3, problems=["simulator bug: 1 internal error"])["verdict"]
    assert v == "FAIL: simulator bug: 1 internal error", v
    v = T.summarize(recs, 4, problems=["simulator bug: 1 internal error"])["verdict"]
    assert v.startswith("FAIL: 1 records lost") and v.endswith("; simulator bug: 1 internal error"), v
    assert T.summarize([], 0)["verdict"].startswith("FAIL: the firmware stored no records")
    assert T.summarize([], 0, problems=["it stopped with MemoryError: x (MicroPython heap 96K)"])["verdict"] == \
        "FAIL: the firmware stored no records; it stopped with MemoryError: x (MicroPython heap 96K)"


def test_summary_txt_starts_with_the_verdict_and_png_has_the_panels(tmp_path):
    pytest.importorskip("matplotlib")
    recs = []
    for i in range(1, 41):
        rx = 12.0 + i if not 20 <= 7 + i <= 35 else 36.0
        recs.append({"seq": i, "ts": 1796163376469 + 6000 * (i - 1), "rpm": 800 + 40 * i, "speed": i,
                     "lat": -37.8167 + 0.0001 * i, "lng": 144.9563 + 0.0002 * i, "_bytes": 50.0, "_rx": rx})
    progress = [[7.0 + i, i, i if not 20 <= 7 + i <= 35 else 12, 0, True] for i in range(41)]
    series = {"progress": progress, "cuts": [[20.0, 15.0]], "faults": [[45.0, "garbage"]]}
    s, png = T.write_report(recs, str(tmp_path), {"gnss_speedup": 6.0}, expected_last_seq=40, series=series,
                            notes=["network restored after 15.0 s"])
    first = (tmp_path / "summary.txt").read_text().splitlines()[0]
    assert first == "OK: every record reached the broker (network restored after 15.0 s)"
    assert json.load(open(tmp_path / "summary.json"))["verdict"] == first
    assert os.path.getsize(png) > 30000
    # the CLI draws the same figure again from the run's files
    with open(tmp_path / "records.jsonl", "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in recs)
    again = tmp_path / "again"
    assert T.main([str(tmp_path / "records.jsonl"), "--out", str(again), "--series", str(tmp_path / "series.json"),
                   "--expected-last-seq", "40"]) == 0
    assert os.path.getsize(again / "trip.png") > 30000
    # the figure's own words: what a reader needs to read it
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    captured = {}
    orig = plt.Figure.savefig

    def keep(fig, *a, **k):
        captured["fig"] = fig
        return orig(fig, *a, **k)

    plt.Figure.savefig = keep
    try:
        T.plot(recs, str(tmp_path / "t.png"), "t", series, 6.0)
    finally:
        plt.Figure.savefig = orig
    fig = captured["fig"]
    texts = []
    for ax in fig.axes:
        texts += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
        leg = ax.get_legend()
        if leg:
            texts += [t.get_text() for t in leg.get_texts()]
    blob = "\n".join(texts)
    assert "6 x faster" in blob  # the replay speed-up explained on the time axis
    assert "RPM (right axis)" in blob and "network cut" in blob and "injected fault" in blob
    assert "queued on the device (on flash" in blob and "taken by the device" in blob
    assert "published (broker PUBACK" in blob and "received by the subscriber" in blob
    assert "delivery delay (s)" in blob and re.search(r"held back by the network cut.*: \d+ records", blob)
    assert "east of the start (m)" in blob and "north of the start (m)" in blob
    assert "speed (km/h)" in blob
    # the speed panel's legend sits above the lines (the y range leaves it room)
    ax1 = fig.axes[0]
    assert ax1.get_ylim()[1] >= 40 * 1.3


def test_at_log_offset_from_the_first_command_in_both_logs(tmp_path):
    a, m = tmp_path / "at.log", tmp_path / "modem.log"
    a.write_text("=== SENT@1 ===\nAT\n==================\n=== SENT@252 ===\nAT+CMEE?\n==================\n")
    m.write_text("=== SENT@333 ===\nAT\n==================\n")
    assert S.at_log_offset(str(a), str(m), 2.0) == pytest.approx(2.332)
    m.write_text("=== SENT@333 ===\nATI\n==================\n")  # not the same conversation: no guess
    assert S.at_log_offset(str(a), str(m), 2.0) is None
    assert S.at_log_offset(str(tmp_path / "none"), str(m), 2.0) is None
