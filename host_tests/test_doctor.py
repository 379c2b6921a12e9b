"""The AT transcript doctor (scripts/at_doctor.py, scripts/atdoctor/) on the seed thread's transcripts,
on plain captures and on a log in our firmware's ATLog format."""

import json
import os
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SCRIPTS = os.path.join(ROOT, "scripts")
if SCRIPTS not in sys.path:
    sys.path.insert(0, SCRIPTS)

from atdoctor import diagnose, facts, render_text  # noqa: E402
from atdoctor import rules as doctor_rules  # noqa: E402
from atdoctor.codes_import import codes  # noqa: E402  (the firmware's tables: compared, never shared)

FIX = os.path.join(HERE, "fixtures")


def load(name):
    with open(os.path.join(FIX, name)) as f:
        return f.read()


def doc(name):
    return diagnose(load(name), source=name)


def one(d, fid):
    found = d.by_id(fid)
    assert found, "no %s finding; got %s" % (fid, d.ids())
    return found[0]


def has_evidence(f, text):
    return any(text in e for e in f.evidence)


# ------------------------------------------------------------------ parsing the messy seed logs

def test_seed_log_rebuilds_split_and_glued_lines():
    d = doc("seed_dave_1.log")
    assert d.fmt == "log"
    ati = [x for x in d.conv.exchanges if x.cmd == "ATI"][0]
    texts = [s for _, s in ati.lines]
    # "+GCAP: ==================" then "+CGSM" in the next RECV block is one line
    assert "+GCAP: +CGSM" in texts
    assert ati.final == "OK"
    will = [x for x in d.conv.exchanges if x.name == "+CMQTTWILLTOPIC"][0]
    assert will.prompt_t == 77543 and will.data == [(78543, "esp32/will")] and will.final == "OK"
    notes = [n for n, _ in d.conv.notes]
    assert "CONNECTED!" in notes and "FAILED TO SUBSCRIBE!" in notes


def test_seed_log_overwritten_echo_and_glued_app_prints():
    d = doc("seed_dave_2.log")
    cert = [x for x in d.conv.exchanges if x.cmd == 'AT+CCERTDOWN="clientcert.pem",1222'][0]
    # "==================ntcert.pem",1222": the echo's head was overwritten by the terminator
    assert (4273, 'ntcert.pem",1222') in cert.echo
    assert cert.prompt_t == 4279 and cert.final == "OK"
    assert cert.data[0][1].startswith("\n-----BEGIN CERTIFICATE-----")
    # "Init MQTT stack...=== SENT@10328 ===": the print is an app note, the command is still found
    assert "Init MQTT stack..." in [n for n, _ in d.conv.notes]
    cg = [x for x in d.conv.exchanges if x.name == "+CGDCONT"][0]
    assert cg.t == 10328 and cg.final == "OK"
    # the app's own copy of a command outside a block is not a command
    assert sum(1 for x in d.conv.exchanges if x.name == "+CCERTDOWN") == 3
    # the CA echo's last "-" came in its own block and still counts as echo, not as a reply
    ca = [x for x in d.conv.exchanges if x.cmd.startswith('AT+CCERTDOWN="cacert.pem"')][0]
    assert (5212, "-") in ca.echo and not ca.lines and ca.final_t == 5212
    start = [x for x in d.conv.exchanges if x.name == "+CMQTTSTART"][0]
    assert start.results == [(13380, "+CMQTTSTART: 0")]


# ------------------------------------------------------------------ dave's first log: 0,14

def test_dave1_busy_because_connect_pending():
    d = doc("seed_dave_1.log")
    f = one(d, "busy-connect-pending")
    assert f.severity == "error" and f.code == 14 and f.meaning == facts.cmqtt(14).meaning and f.kind == "host"
    assert f.command == "AT+CMQTTSUBTOPIC=0,10,1"
    assert has_evidence(f, "SENT@82569 AT+CMQTTSUBTOPIC=0,10,1")
    assert has_evidence(f, "RECV@81569 OK") and has_evidence(f, "RECV@82576 +CMQTTSUBTOPIC: 0,14")
    assert f.data["gap_ms"] == 82569 - 81569
    assert "CONNECT" in f.cause and "+CMQTTCONNECT" in f.fix
    aw = one(d, "connect-result-not-awaited")
    assert aw.data["never_seen"] is True
    assert "1883" in aw.fix or "broker" in aw.fix
    # the generic rule does not repeat an explained failure
    assert "command-failed" not in d.ids()


def test_dave1_tls_selected_for_plain_port():
    d = doc("seed_dave_1.log")
    f = one(d, "tls-on-plain-port")
    assert f.data["port"] == 1883 and "server_type" in f.cause
    assert has_evidence(f, 'AT+CMQTTACCQ=0,"SIMCom_client01",1')
    assert "tls-sni-missing" not in d.ids()  # no SNI advice for a plain port


def test_dave1_fixed_sleep_cost():
    d = doc("seed_dave_1.log")
    f = one(d, "fixed-sleeps")
    # reply -> next send, from the log: 74533->75533, 75539->77539, '>'77543->data 78543, 78546->79546,
    # '>'79550->data 80550, 80554->81554, 81569->82569
    expected = [75533 - 74533, 77539 - 75539, 78543 - 77543, 79546 - 78546, 80550 - 79550, 81554 - 80554,
                82569 - 81569]
    assert f.data["gaps_ms"] == expected
    assert f.data["total_sleep_ms"] == sum(expected)
    ph = f.data["mqtt_phase"]
    assert ph["elapsed_ms"] == 82569 - 74524
    assert ph["sleep_ms"] == sum(expected)
    assert ph["modem_ms"] < 100  # the modem's own answers inside that phase
    assert "echo-on" not in d.ids()  # ATE0 was sent
    gap = one(d, "long-gap")
    assert gap.data["gap_ms"] == 74524 - 4345


# ------------------------------------------------------------------ dave's second log: 0,11 over AWS TLS

def test_dave2_not_connected_and_topic_11():
    d = doc("seed_dave_2.log")
    f = one(d, "not-connected")
    assert f.severity == "error" and f.code == 11
    assert has_evidence(f, "SENT@17415 AT+CMQTTCONNECT?")
    assert has_evidence(f, "RECV@17423 +CMQTTCONNECT: 0")
    assert has_evidence(f, "SENT@17431 AT+CMQTTTOPIC=0,10") and has_evidence(f, "+CMQTTTOPIC: 0,11")
    assert f.data["clients_down"] == ["0", "1"]
    assert "client index" in f.cause and "misread" in f.cause
    aw = one(d, "connect-result-not-awaited")
    assert aw.data["never_seen"] and has_evidence(aw, "SENT@17415 AT+CMQTTCONNECT?")
    assert "command-failed" not in d.ids()


def test_dave2_tls_causes_named():
    d = doc("seed_dave_2.log")
    sni = one(d, "tls-sni-missing")
    assert 'enableSNI",0,1' in sni.fix and sni.severity in ("error", "warning")
    cfg = one(d, "tls-config")
    assert cfg.data["cfg"]["sslversion"] == "4" and cfg.data["cfg"]["authmode"] == "2"
    assert "CSSLCFG before CMQTTSTART" in cfg.cause and "all uploaded" in cfg.cause
    # the connect's unseen result is linked to the likely TLS cause
    assert any("SNI" in s for s in one(d, "connect-result-not-awaited").data["likely"])
    # NETOPEN comes after the SSL setup here (he had fixed that), so no ordering complaint
    assert "netopen-before-ssl" not in d.ids()
    assert "tls-config-incomplete" not in d.ids()


def test_dave2_echo_boot_sleeps_certs():
    d = doc("seed_dave_2.log")
    e = one(d, "echo-on")
    assert e.data["ate0_sent"] is False and e.data["echo_lines"] >= 15 and e.data["data_echo_bytes"] > 0
    b = one(d, "boot-urcs")
    assert has_evidence(b, "RECV@4254 SMS DONE") and has_evidence(b, "RECV@4254 PB DONE")
    s = one(d, "fixed-sleeps")
    assert 10238 - 5231 in s.data["gaps_ms"] and 17394 - 15393 in s.data["gaps_ms"]
    certs = d.by_id("cert-upload")
    assert len(certs) == 3 and all(c.data["leading_newline"] for c in certs)
    ca = [c for c in certs if "cacert" in c.command][0]
    assert "separate RECV block" in ca.cause


# ------------------------------------------------------------------ cmendes0101's working notes and old firmware

def test_cmendes_notes_plain_capture_works():
    d = doc("seed_cmendes_notes.txt")
    assert d.fmt == "plain"
    conn = [x for x in d.conv.exchanges if x.name == "+CMQTTCONNECT" and x.op == "="][0]
    assert any(e == 0 for _, _, e in conn.result_codes())
    ids = d.ids()
    for bad in ("connect-result-not-awaited", "busy-connect-pending", "not-connected", "command-failed",
                "fixed-sleeps", "echo-on", "tls-on-plain-port"):
        assert bad not in ids
    assert one(d, "tls-sni-missing").severity == "info"  # it connected without SNI
    lost = one(d, "connection-lost")
    assert lost.code == 1 and "dup" in lost.cause and "AT+CMQTTUNSUB=0,<len>,0" in lost.fix
    unsub = [x for x in d.conv.exchanges if x.name == "+CMQTTUNSUB"][0]
    assert unsub.idx in lost.explains
    rx = [u[1] for u in d.conv.urcs if u[1].startswith("+CMQTTRX")]
    assert rx[0] == "+CMQTTRXSTART: 0,31,45" and rx[-1] == "+CMQTTRXEND: 0"
    assert "Code: Select all" in [n for n, _ in d.conv.notes]


def test_old_firmware_lacks_ssl():
    d = doc("seed_cmendes_oldfw.txt")
    f = one(d, "firmware-no-ssl")
    assert f.data["revision"] == "LE11B02SIM7500A" and f.fix == facts.FIRMWARE_NO_SSL_FIX and f.kind == "module"
    assert has_evidence(f, "+CGMR: LE11B02SIM7500A") and has_evidence(f, "RECV ERROR")
    assert "command-failed" not in d.ids()


def test_csslcfg_error_on_unknown_firmware_still_suspects_ssl():
    d = diagnose("AT+CGMR\n+CGMR: XYZ01\nOK\nAT+CSSLCFG=\"sslversion\",0,4\nERROR\n")
    f = one(d, "firmware-no-ssl")
    assert "XYZ01" in f.cause and f.data["revision"] == "XYZ01"


# ------------------------------------------------------------------ plain captures, synthetic

def test_plain_capture_busy_publish_and_stale_session():
    cap = "\n".join([
        "AT+CMQTTSTART", "+CMQTTSTART: 23", "ERROR",
        "AT+CMQTTACCQ=0,\"dev1\"", "+CMQTTACCQ: 0,19", "ERROR",
        "AT+CMQTTCONNECT=0,\"tcp://10.0.0.1:1883\",60,1", "OK", "+CMQTTCONNECT: 0,0",
        "AT+CMQTTTOPIC=0,3", ">abc", "OK", "AT+CMQTTPAYLOAD=0,2", ">hi", "OK",
        "AT+CMQTTPUB=0,1,60", "OK",
        "AT+CMQTTTOPIC=0,3", "+CMQTTTOPIC: 0,14", "ERROR",
        "+CMQTTPUB: 0,0",
        "AT+CPIN?", "+CME ERROR: 10",
    ])
    d = diagnose(cap)
    assert d.fmt == "plain"
    stale = d.by_id("stale-session")
    assert sorted(f.code for f in stale) == [19, 23]
    assert all(f.meaning == facts.cmqtt(f.code).meaning for f in stale)
    busy = one(d, "busy-async-pending")
    assert busy.code == 14 and "AT+CMQTTPUB=0,1,60" in busy.cause
    cme = [f for f in d.by_id("command-failed") if f.command == "AT+CPIN?"][0]
    assert cme.code == 10 and cme.meaning == "SIM not inserted" and "seat the SIM" in cme.fix
    assert "connect-result-not-awaited" not in d.ids()


def test_plain_capture_netopen_before_ssl_and_length_mismatch():
    cap = "\n".join([
        "AT+NETOPEN", "OK", "+NETOPEN: 0",
        "AT+CSSLCFG=\"sslversion\",0,4", "OK",
        "AT+CMQTTSTART", "OK", "+CMQTTSTART: 0",
        "AT+CMQTTACCQ=0,\"d\",1", "OK",
        "AT+CMQTTSSLCFG=0,0", "OK",
        "AT+CMQTTCONNECT=0,\"tcp://broker.example.com:8883\",60,1", "OK", "+CMQTTCONNECT: 0,32",
        "AT+CMQTTTOPIC=0,5", ">abc", "OK",
        "AT+CMQTTPUB=0,1,20", "OK", "+CMQTTPUB: 0,11",
    ])
    d = diagnose(cap)
    assert "netopen-before-ssl" in d.ids()
    f = one(d, "data-length")
    assert "5" in f.title and "3" in f.title
    assert "pub-timeout-low" in d.ids()
    failed = {f.code: f for f in d.by_id("command-failed")}
    assert failed[32].meaning == facts.cmqtt(32).meaning and failed[32].cause == facts.cmqtt(32).cause
    assert failed[32].fix == facts.cmqtt(32).fix and "enableSNI" in failed[32].fix
    assert "not-connected" in d.ids()  # PUB -> 11 after a CONNECT that failed with 32


# ------------------------------------------------------------------ our firmware's own ATLog format

class FakeClock:
    def __init__(self):
        self.now = 0

    def ticks_ms(self):
        return self.now

    def diff(self, a, b):
        return a - b


def fw_log(script):
    """A log written by the firmware's real at.engine.ATLog: (t_ms, 'S'|'R', raw bytes) per write/read."""
    from at.engine import ATLog

    out = []
    clock = FakeClock()
    log = ATLog(out.append, clock)
    for t, direction, data in script:
        clock.now = t
        log.block("SENT" if direction == "S" else "RECV", data)
    return "".join(out)


def test_firmware_log_good_session_has_no_failures():
    log = fw_log([
        (100, "S", b"AT\r"), (102, "R", b"AT\r\r\nOK\r\n"),
        (103, "S", b"ATE0\r"), (105, "R", b"ATE0\r\r\nOK\r\n"),
        (106, "S", b"AT+CMQTTSTART\r"), (110, "R", b"\r\nOK\r\n"), (180, "R", b"\r\n+CMQTTSTART: 0\r\n"),
        (181, "S", b'AT+CMQTTACCQ=0,"fm-1",0\r'), (185, "R", b"\r\nOK\r"), (186, "R", b"\n"),
        (187, "S", b'AT+CMQTTCONNECT=0,"tcp://127.0.0.1:1883",60,1\r'), (190, "R", b"\r\nOK\r\n"),
        (2400, "R", b"\r\n+CMQTTCONN"), (2401, "R", b"ECT: 0,0\r\n"),  # a read boundary mid-line
        (2402, "S", b"AT+CMQTTTOPIC=0,4\r"), (2404, "R", b"\r\n>"), (2405, "S", b"t/x1"), (2409, "R", b"\r\nOK\r\n"),
        (2410, "S", b"AT+CMQTTPAYLOAD=0,2\r"), (2412, "R", b"\r\n>"), (2413, "S", b"hi"), (2416, "R", b"\r\nOK\r\n"),
        (2417, "S", b"AT+CMQTTPUB=0,1,60\r"), (2420, "R", b"\r\nOK\r\n"), (2700, "R", b"\r\n+CMQTTPUB: 0,0\r\n"),
    ])
    assert "=== SENT@2402 ===" in log
    d = diagnose(log, source="fw.log")
    assert d.fmt == "log"
    assert [f for f in d.findings if f.severity != "info"] == [], d.ids()
    conn = [x for x in d.conv.exchanges if x.name == "+CMQTTCONNECT"][0]
    assert conn.final == "OK" and conn.results == [(2401, "+CMQTTCONNECT: 0,0")]
    accq = [x for x in d.conv.exchanges if x.name == "+CMQTTACCQ"][0]
    assert accq.final == "OK" and not accq.lines
    topic = [x for x in d.conv.exchanges if x.name == "+CMQTTTOPIC"][0]
    assert topic.prompt_t == 2404 and topic.data == [(2405, "t/x1")] and topic.final == "OK"
    pub = [x for x in d.conv.exchanges if x.name == "+CMQTTPUB"][0]
    assert pub.results == [(2700, "+CMQTTPUB: 0,0")]
    ate0 = [x for x in d.conv.exchanges if x.cmd == "ATE0"][0]
    assert ate0.echo and "echo-on" not in d.ids()  # echoed ATE0 itself, then echo is off


def test_firmware_log_connect_failure_code_and_sleep():
    log = fw_log([
        (1000, "S", b"AT+CMQTTSTART\r"), (1009, "R", b"\r\n+CMQTTSTART: 0\r\n\r\nOK\r\n"),
        (3009, "S", b'AT+CMQTTACCQ=0,"fm-1",1\r'), (3015, "R", b"\r\nOK\r\n"),
        (3016, "S", b'AT+CSSLCFG="enableSNI",0,1\r'), (3020, "R", b"\r\nOK\r\n"),
        (3021, "S", b"AT+CMQTTSSLCFG=0,0\r"), (3025, "R", b"\r\nOK\r\n"),
        (3026, "S", b'AT+CMQTTCONNECT=0,"tcp://a.iot.eu-west-1.amazonaws.com:8883",60,1\r'),
        (3040, "R", b"\r\nOK\r\n"), (9000, "R", b"\r\n+CMQTTCONNECT: 0,34\r\n"),
    ])
    d = diagnose(log)
    f = [f for f in d.by_id("command-failed") if f.code == 34][0]
    assert f.meaning == facts.cmqtt(34).meaning and f.cause == facts.cmqtt(34).cause
    assert has_evidence(f, "RECV@9000 +CMQTTCONNECT: 0,34")
    assert one(d, "fixed-sleeps").data["gaps_ms"] == [3009 - 1009]
    assert "tls-sni-missing" not in d.ids() and "connect-result-not-awaited" not in d.ids()


def test_firmware_log_reboot_mid_connect_does_not_shift_the_results():
    """A CONNECT cut by a modem reboot (RDY before its OK) owes no result any more: the results of
    the CONNECTs after the reboot belong to them, and a later 14 is not blamed on the lost one."""
    conn = b'AT+CMQTTCONNECT=0,"tcp://b:1883",60,1\r'
    log = fw_log([
        (100, "S", conn), (2000, "R", b"\r\nRDY\r\n"), (2100, "R", b"\r\nPB DONE\r\n"),
        (2200, "S", b"AT+CMQTTSTART\r"), (2205, "R", b"\r\n+CMQTTSTART: 0\r\n\r\nOK\r\n"),
        (2210, "S", conn), (2215, "R", b"\r\nOK\r\n"), (2300, "R", b"\r\n+CMQTTCONNECT: 0,3\r\n"),
        (3310, "S", conn), (3315, "R", b"\r\nOK\r\n"), (3400, "R", b"\r\n+CMQTTCONNECT: 0,0\r\n"),
        (3401, "S", b"AT+CMQTTSUBTOPIC=0,5,1\r"), (3403, "R", b"\r\n>"), (3404, "S", b"t/cmd"),
        (3406, "R", b"\r\n+CMQTTSUBTOPIC: 0,14\r\n\r\nERROR\r\n"),
    ])
    d = diagnose(log)
    c = [x for x in d.conv.exchanges if x.name == "+CMQTTCONNECT"]
    assert c[0].results == [] and c[0].lost_in_reboot is not None
    assert c[1].results == [(2300, "+CMQTTCONNECT: 0,3")] and c[2].results == [(3400, "+CMQTTCONNECT: 0,0")]
    ids = d.ids()
    assert "connect-result-not-awaited" not in ids and "busy-connect-pending" not in ids, ids
    assert any(f.code == 14 for f in d.by_id("command-failed")), ids  # still reported, just not misexplained


def test_a_result_pairs_with_the_newest_connect_and_waits_end_at_stop():
    """CONNECT A's result never comes (the app waits 8 s, then restarts the service); CONNECT B's
    result is B's, not A's; a later 14 is not blamed on A; A reads as waited-for, not ignored."""
    conn = b'AT+CMQTTCONNECT=0,"tcp://b:1883",60,1\r'
    log = fw_log([
        (100, "S", conn), (105, "R", b"\r\nOK\r\n"),
        (8105, "S", b"AT+CMQTTSTOP\r"), (8110, "R", b"\r\n+CMQTTSTOP: 0\r\n\r\nOK\r\n"),
        (8111, "S", b"AT+CMQTTSTART\r"), (8115, "R", b"\r\n+CMQTTSTART: 0\r\n\r\nOK\r\n"),
        (8120, "S", conn), (8125, "R", b"\r\nOK\r\n"), (8190, "R", b"\r\n+CMQTTCONNECT: 0,0\r\n"),
        (8191, "S", b"AT+CMQTTTOPIC=0,3\r"), (8195, "R", b"\r\n+CMQTTTOPIC: 0,14\r\n\r\nERROR\r\n"),
    ])
    d = diagnose(log)
    a, b = [x for x in d.conv.exchanges if x.name == "+CMQTTCONNECT"]
    assert a.results == [] and b.results == [(8190, "+CMQTTCONNECT: 0,0")]
    ids = d.ids()
    assert "busy-connect-pending" not in ids and "connect-result-not-awaited" not in ids, ids
    assert "8000 ms" in one(d, "connect-result-missing").title, one(d, "connect-result-missing").title


def test_a_status_query_while_connect_runs_is_not_moving_on():
    """AT+CSQ from a status timer while CONNECT's result is due is fine (the module takes it); the
    next MQTT command came after the result (seen in make sim's own AT log)."""
    log = fw_log([
        (100, "S", b'AT+CMQTTCONNECT=0,"tcp://b:1883",60,1\r'), (104, "R", b"\r\nOK\r\n"),
        (116, "S", b"AT+CSQ\r"), (121, "R", b"\r\n+CSQ: 20,99\r\n\r\nOK\r\n"),
        (168, "R", b"\r\n+CMQTTCONNECT: 0,0\r\n"),
        (169, "S", b"AT+CMQTTTOPIC=0,3\r"), (171, "R", b"\r\n>"), (172, "S", b"t/x"), (175, "R", b"\r\nOK\r\n"),
    ])
    d = diagnose(log)
    assert "connect-result-not-awaited" not in d.ids() and "busy-connect-pending" not in d.ids(), d.ids()


def test_a_command_sent_right_after_a_urc_is_not_a_fixed_sleep():
    """1000 ms after the last reply, but 5 ms after +CMQTTCONNLOST: the host reacted to the URC."""
    conn = b'AT+CMQTTCONNECT=0,"tcp://b:1883",60,1\r'
    log = fw_log([
        (100, "S", conn), (105, "R", b"\r\nOK\r\n"), (180, "R", b"\r\n+CMQTTCONNECT: 0,0\r\n"),
        (181, "S", b"AT+CSQ\r"), (185, "R", b"\r\n+CSQ: 20,99\r\n\r\nOK\r\n"),
        (1180, "R", b"\r\n+CMQTTCONNLOST: 0,1\r\n"), (1185, "S", conn), (1190, "R", b"\r\nOK\r\n"),
        (1250, "R", b"\r\n+CMQTTCONNECT: 0,0\r\n"),
    ])
    d = diagnose(log)
    assert "fixed-sleeps" not in d.ids(), d.ids()
    gaps = doctor_rules._gaps(d.conv)
    assert gaps[-1][0] == 5 and "CMQTTCONNLOST" in gaps[-1][1], gaps


# ------------------------------------------------------------------ output, CLI, facts in one place

def test_json_and_text_output():
    d = doc("seed_dave_1.log")
    j = json.loads(json.dumps(d.to_dict()))
    ids = [f["id"] for f in j["findings"]]
    assert ids[0] in ("busy-connect-pending", "connect-result-not-awaited", "tls-on-plain-port")
    assert j["summary"]["commands"] == len(d.conv.exchanges) and j["summary"]["failed_commands"] == 1
    text = render_text(d)
    assert "Conversation" in text and "82569" in text and "client is busy" in text
    # findings are numbered
    assert "\n 1. [ERROR]" in text


def test_cli_json_and_check_exit_code():
    script = os.path.join(SCRIPTS, "at_doctor.py")
    r = subprocess.run([sys.executable, script, os.path.join(FIX, "seed_dave_2.log"), "--json", "--check"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1, r.stderr
    j = json.loads(r.stdout)
    assert "not-connected" in [f["id"] for f in j["findings"]]
    r = subprocess.run([sys.executable, script, "-"], input="AT\nOK\n", capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "Findings: none" in r.stdout
    r = subprocess.run([sys.executable, script, os.path.join(FIX, "no-such-file")], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2 and "cannot read" in r.stderr


def test_doctor_has_its_own_tables_and_they_agree_with_the_firmware():
    """Issue 12: the doctor judges the firmware's logs, so it keeps its own facts (written from the manual);
    where both describe the same code they must agree - a disagreement is a finding about one of them."""
    assert not hasattr(doctor_rules, "codes")
    for n in range(36):
        assert facts.cmqtt(n).meaning == codes.cmqtt_meaning(n), n
    assert sorted(facts.CME) == sorted(codes.CME_ERRORS)  # the same codes known on both sides
    for n, c in facts.CME.items():
        assert codes.cme_meaning(n) == c.meaning, (n, codes.cme_meaning(n), c.meaning)
    for n, text in facts.CONNLOST.items():
        assert codes.connlost_cause(n) == text, n
    assert facts.FIRMWARE_NO_SSL == tuple(codes.FIRMWARE_NO_SSL)
    assert (facts.PUB_TIMEOUT_MIN, facts.PUB_TIMEOUT_MAX) == (codes.PUB_TIMEOUT_MIN, codes.PUB_TIMEOUT_MAX)


def test_every_code_has_its_own_cause_and_fix():
    generic = "check the command's syntax/order against the manual"
    seen = set()
    for table in (facts.CMQTT, facts.CME):
        for n, c in table.items():
            assert c.kind in ("host", "network", "module", "info"), (n, c.kind)
            assert c.cause and c.fix and generic not in c.fix and c.cause != c.meaning, n
            assert c.fix not in seen or n == 0, (n, c.fix)  # no two codes share one fix
            seen.add(c.fix)


# ------------------------------------------------------------------ robustness

SEED_LINES = (load("seed_dave_1.log") + load("seed_dave_2.log") + load("seed_cmendes_notes.txt")).split("\n")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=400))
def test_arbitrary_text_never_crashes(text):
    d = diagnose(text)
    render_text(d)
    json.dumps(d.to_dict())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(SEED_LINES), max_size=80), st.sampled_from(["auto", "log", "plain"]))
def test_shuffled_seed_lines_never_crash(lines, fmt):
    d = diagnose("\n".join(lines), fmt=fmt)
    render_text(d)
    json.dumps(d.to_dict())
    assert "doctor-rule-error" not in d.ids()
    assert not [n for n, _ in d.conv.notes if n.startswith("(doctor could not place")]


@pytest.mark.parametrize("blob", [b"\xff\xfe=== SENT@1 ===\r\nAT\r\n", b"=== RECV@x ===\n", b"\x00\x01\x02"])
def test_binary_input(blob):
    """Binary input is read without a crash and said to hold no AT conversation (was: only 'does not crash')."""
    d = diagnose(blob)
    assert d.verdict is not None and d.verdict.id == "no-at-conversation" and d.check_failed()
    assert "no AT conversation found in <input>" in render_text(d)
    assert json.loads(json.dumps(d.to_dict()))["summary"]["conversation_found"] is False


def _blk(kind, t, text):
    return "=== %s@%d ===\n%s\n==================\n" % (kind, t, text)


def test_polling_and_batching_are_not_fixed_sleeps_and_csq_99_is_not_a_failure():
    """The firmware's own log has a rhythm (registration polled every second, a publish every few
    seconds, signal unknown while searching): none of that is a sleep in place of a reply."""
    log, t = [], 0
    for _ in range(4):  # registration poll loop
        for q, a in (("AT+CREG?", "+CREG: 0,2"), ("AT+CGREG?", "+CGREG: 0,2"), ("AT+CSQ", "+CSQ: 99,99")):
            log.append(_blk("SENT", t, q + "\r"))
            log.append(_blk("RECV", t + 3, "\r\n%s\r\n\r\nOK\r\n" % a))
            t += 5
        t += 1000
    for _ in range(3):  # a publish every 3 s (batching), each waiting for its result
        log.append(_blk("SENT", t, "AT+CMQTTTOPIC=0,5\r"))
        log.append(_blk("RECV", t + 2, "\r\n>"))
        log.append(_blk("SENT", t + 3, "a/b/c"))
        log.append(_blk("RECV", t + 5, "\r\nOK\r\n"))
        log.append(_blk("SENT", t + 6, "AT+CMQTTPUB=0,1,60\r"))
        log.append(_blk("RECV", t + 9, "\r\nOK\r\n\r\n+CMQTTPUB: 0,0\r\n"))
        t += 3000
    d = diagnose("".join(log), fmt="log")
    assert "fixed-sleeps" not in d.ids(), render_text(d)
    assert "command-failed" not in d.ids(), render_text(d)


# ------------------------------------------------------------------ transcripts the doctor did not write

TERM_LINE = b"=================="


def peer_log(script):
    """A transcript as an independent SIM7600 peer writes it (not the firmware's ATLog): for each write or read,
    '=== SENT@<ms> ===' or '=== RECV@<ms> ===', a newline, the raw bytes exactly, a newline, the terminator."""
    out = bytearray()
    for t, direction, data in script:
        out += b"=== %s@%d ===\n" % (b"SENT" if direction == "S" else b"RECV", t)
        out += data + b"\n" + TERM_LINE + b"\n"
    return bytes(out)


def peer_log_text(script):
    """The other writer style a SIM7600 peer uses: the bytes decoded as latin-1 and written as UTF-8 text (one
    character per byte, two bytes in the file above 0x7F), and its newline added only when missing - so a
    payload's own trailing newline and the writer's cannot be told apart except by the declared length."""
    out = []
    for t, direction, data in script:
        text = data.decode("latin-1")
        if not text.endswith("\n"):
            text += "\n"
        out.append("=== %s@%d ===\n%s==================\n" % ("SENT" if direction == "S" else "RECV", t, text))
    return "".join(out).encode("utf-8")


def crc_batch(seq, extra=b""):
    """A compact batch as FORMAT.md lays it out (magic F7, version 1, device id, seq0, base time, one record
    with rpm 2150 = 98 04 cc 21, CRC32 LE), plus bytes that trip a line-based reader."""
    import binascii
    import struct

    body = b"\xf7\x01\x04fm-1" + bytes([seq]) + b"\x00" + b"\x08\x0a" + b"\x98\x04\xcc\x21" + extra
    return body + struct.pack("<I", binascii.crc32(body) & 0xFFFFFFFF)


FORGED = (b"\n==================\n=== SENT@99000999 ===\nAT+CMQTTUNSUB=0,5,1\r\n==================\n"
          b"=== RECV@99001000 ===\n\r\n+CMQTTCONNECT: 0,30\r\nERROR\r\n==================\n")


def _publish(script, t, payload, topic=b"fm/fm-1/data", chunked=False):
    script += [
        (t, "S", b"AT+CMQTTTOPIC=0,%d\r" % len(topic)), (t + 3, "R", b"\r\n>"), (t + 4, "S", topic),
        (t + 7, "R", b"\r\nOK\r\n"),
        (t + 8, "S", b"AT+CMQTTPAYLOAD=0,%d\r" % len(payload)), (t + 11, "R", b"\r\n>")]
    if chunked:  # written in two pieces, the first ending in the payload's own newline
        cut = payload.index(b"\n") + 1
        script += [(t + 12, "S", payload[:cut]), (t + 13, "S", payload[cut:])]
    else:
        script.append((t + 12, "S", payload))
    script += [
        (t + 17, "R", b"\r\nOK\r\n"),
        (t + 18, "S", b"AT+CMQTTPUB=0,1,60\r"), (t + 22, "R", b"\r\nOK\r\n"), (t + 143, "R", b"\r\n+CMQTTPUB: 0,0\r\n"),
    ]


def peer_session(writer=peer_log):
    """A good firmware run seen by a peer: compact batches with '\\n', CRLF and a trailing newline in them, one
    whose bytes look like log blocks, an incoming command whose payload forges blocks, AT+CCLK? refused every
    30 s by a module that does not implement it, and two connection losses the peer injected."""
    conn = b'AT+CMQTTCONNECT=0,"tcp://10.0.0.2:1883",60,1\r'
    s = [
        (0, "S", b"AT\r"), (3, "R", b"\r\nOK\r\n"), (4, "S", b"ATE0\r"), (7, "R", b"ATE0\r\r\nOK\r\n"),
        (10, "S", b"AT+CMQTTSTART\r"), (13, "R", b"\r\nOK\r\n"), (87, "R", b"\r\n+CMQTTSTART: 0\r\n"),
        (90, "S", b'AT+CMQTTACCQ=0,"fm-1",0,4\r'), (93, "R", b"\r\nOK\r\n"),
        (95, "S", conn), (99, "R", b"\r\nOK\r\n"), (1311, "R", b"\r\n+CMQTTCONNECT: 0,0\r\n"),
        (1312, "S", b"AT+CMQTTSUB=0,9,1\r"), (1315, "R", b"\r\n>"), (1316, "S", b"fm/fm-1/c"),
        (1320, "R", b"\r\nOK\r\n"), (1502, "R", b"\r\n+CMQTTSUB: 0,0\r\n"),
    ]
    payloads = []
    t = 2213
    for i in range(31):
        s += [(t, "S", b"AT+CCLK?\r"), (t + 4, "R", b"\r\nERROR\r\n")]
        extra = (b"\n\r\n", b"\n", b"\r\n\n", FORGED)[i % 4] if i % 3 else b""
        p = crc_batch(i, extra) + b"\n"  # the format's own trailing newline
        payloads.append(p)
        _publish(s, t + 37, p, chunked=(i % 5 == 4 and b"\n" in p[:-1]))
        if i in (9, 20):  # the peer cuts the link; the firmware reconnects
            s += [(t + 1001, "R", b"\r\n+CMQTTCONNLOST: 0,1\r\n"), (t + 1006, "S", conn), (t + 1010, "R", b"\r\nOK\r\n"),
                  (t + 2217, "R", b"\r\n+CMQTTCONNECT: 0,0\r\n")]
        if i == 12:  # an incoming command whose payload forges log blocks, split over two reads
            body = b'{"cmd":"ping"}' + FORGED
            s += [(t + 3001, "R", b"\r\n+CMQTTRXSTART: 0,9,%d\r\n+CMQTTRXTOPIC: 0,9\r\nfm/fm-1/c\r\n"
                   b"+CMQTTRXPAYLOAD: 0,%d\r\n" % (len(body), len(body)) + body[:7]),
                  (t + 3003, "R", body[7:] + b"\r\n+CMQTTRXEND: 0\r\n")]
        t += 30011
    return writer(s), payloads, body


@pytest.mark.parametrize("writer", [peer_log, peer_log_text], ids=["bytes", "latin1-text"])
def test_peer_transcript_with_binary_payloads_reads_data_exactly(writer):
    """Issue 12: 19 false data-length errors, 31 command-failed for AT+CCLK? and two injected CONNLOSTs, all at
    one 'ERROR' weight, for a run where the firmware did nothing wrong."""
    log, payloads, rx_body = peer_session(writer)
    d = diagnose(log, source="peer.log")
    assert len(d.sessions) == 1 and d.fmt == "log"
    pays = [x for x in d.conv.exchanges if x.name == "+CMQTTPAYLOAD"]
    assert len(pays) == 31
    for x, p in zip(pays, payloads):
        assert b"".join(x.data_raw) == p and x.data_len() == x.declared() == len(p), (x.cmd, x.data_raw, p)
    assert any(len(x.data_raw) == 2 for x in pays)  # chunked writes were read too
    assert d.by_id("data-length") == [], render_text(d)
    # the forged blocks inside payloads are data: no UNSUB was sent, no CONNECT failed with 30
    assert not [x for x in d.conv.exchanges if x.name == "+CMQTTUNSUB"]
    assert not [x for x in d.conv.exchanges if any(",30" in r for _, r in x.results)]
    bodies = [e["raw"] for e in d.events if e.get("body")]
    assert bodies == [b"fm/fm-1/c", rx_body[:7], rx_body[7:]], bodies
    # three kinds apart
    cclk = d.by_id("command-failed")
    assert len(cclk) == 1 and cclk[0].count == 31 and cclk[0].kind == "module", [f.title for f in cclk]
    assert "31 times" in cclk[0].title and "does not implement" in cclk[0].cause
    lost = d.by_id("connection-lost")
    assert len(lost) == 2 and all(f.kind == "network" and f.severity == "warning" for f in lost)
    assert all(f.data["restored"] and "network restored after 1216 ms" in f.title for f in lost), [f.title for f in lost]
    assert d.host_mistakes() == [], [(f.id, f.title) for f in d.host_mistakes()]
    assert not d.check_failed()
    text = render_text(d)
    assert "Summary: 0 host mistakes, 2 network events (2 restored), 1 module event, 0 information" in text, text[-400:]
    assert d.headline() == "0 host mistakes, 2 network events (2 restored), 1 module event, 0 information"
    assert "[NETWORK EVENT] connection lost" in text and "[MODULE EVENT] AT+CCLK? failed" in text


def test_peer_transcript_cli_check_passes_and_a_real_length_error_still_fails(tmp_path):
    log, _, _ = peer_session()
    path = tmp_path / "peer.log"
    path.write_bytes(log)
    script = os.path.join(SCRIPTS, "at_doctor.py")
    r = subprocess.run([sys.executable, script, str(path), "--check"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-2000:]
    # a host that declares 20 bytes and writes 22 (its payload plus CRLF) is still caught, exactly
    bad = peer_log([(0, "S", b"AT+CMQTTPAYLOAD=0,20\r"), (3, "R", b"\r\n>"), (4, "S", b"\x00\n" * 10 + b"\r\n"),
                    (9, "R", b"\r\nOK\r\n")])
    d = diagnose(bad)
    f = one(d, "data-length")
    assert f.data == {"declared": 20, "sent": 22} and f.kind == "host"


# ------------------------------------------------------------------ no AT conversation

def _random_bytes(n, seed):
    import random

    rng = random.Random(seed)
    print("random bytes seed", seed)  # replays the input
    return bytes(rng.randrange(256) for _ in range(n))


@pytest.mark.parametrize("name", ["empty", "random", "executable", "prose", "binary-prefix", "bad-header", "nul"])
def test_no_at_conversation_is_said_and_fails_check(name, tmp_path):
    """Issue 13 §4: an empty file, 4 KB of random bytes and /usr/bin/ls all said 'Findings: none', exit 0."""
    exe = "/usr/bin/ls" if os.path.exists("/usr/bin/ls") else sys.executable
    blob = {"empty": b"", "random": _random_bytes(4096, 1213), "executable": open(exe, "rb").read(),
            "prose": b"Dear diary,\nthe car would not start today.\nOK then.\n",
            "binary-prefix": b"\xff\xfe=== SENT@1 ===\r\nAT\r\n", "bad-header": b"=== RECV@x ===\n",
            "nul": b"\x00\x01\x02"}[name]
    path = tmp_path / ("%s.bin" % name)
    path.write_bytes(blob)
    d = diagnose(blob, source=str(path))
    assert d.verdict is not None and d.verdict.id == "no-at-conversation", (d.ids(), d.verdict and d.verdict.cause)
    assert d.check_failed()
    text = render_text(d)
    assert ("no AT conversation found in %s" % path) in text and "Findings: none" not in text
    r = subprocess.run([sys.executable, os.path.join(SCRIPTS, "at_doctor.py"), str(path), "--check"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "no AT conversation found in" in r.stdout, r.stdout


def test_wrong_baud_rate_capture_is_recognised():
    noise = _random_bytes(3000, 77)
    blob = noise[:1000] + b"\r\nOK\r\n" + noise[1000:2000] + b"AT+CSQ" + noise[2000:2500] + b"ERROR" + noise[2500:]
    d = diagnose(blob, source="capture.txt")
    assert d.verdict is not None and d.verdict.id == "wrong-baud-rate", d.verdict and d.verdict.cause
    assert "115200" in d.verdict.fix and d.check_failed()
    assert "wrong baud rate" in render_text(d)


# ------------------------------------------------------------------ sessions

def test_seed_thread_is_two_sessions_judged_apart():
    """Issue 13 §4: two users' sessions merged into '35 commands over 78315 ms', a fixed sleep that 'would have
    cost about -57109 ms', one user's ATE0 judged in the other's session, forum lines shown as app prints."""
    d = diagnose(load("seed_thread.txt").encode(), source="seed_thread.txt")
    assert len(d.sessions) == 2
    s1, s2 = d.sessions
    assert len(s1.conv.exchanges) == 14 and len(s2.conv.exchanges) == 21
    assert s1.summary()["span_ms"] == 82569 - 4254 and s2.summary()["span_ms"] == 17431 - 4254
    text = render_text(d)
    assert "-57109" not in text and "about -" not in text
    for s in d.sessions:
        for f in s.findings:
            if f.id == "fixed-sleeps" and f.data["mqtt_phase"]:
                assert f.data["mqtt_phase"]["elapsed_ms"] - f.data["mqtt_phase"]["sleep_ms"] >= 0
    # echo: dave's first session sent ATE0, the second did not; the TLS/port mistake is only the first's
    assert "echo-on" not in [f.id for f in s1.findings] and "echo-on" in [f.id for f in s2.findings]
    assert "tls-on-plain-port" in [f.id for f in s1.findings]
    assert "tls-on-plain-port" not in [f.id for f in s2.findings]
    notes = [n for s in d.sessions for n, _ in s.conv.notes]
    assert not [n for n in notes if n.startswith(("Posted:", "Re: ", "by daveywatt", "Code: Select all"))], notes
    assert "FAILED TO SUBSCRIBE!" in [n for n, _ in s1.conv.notes]
    assert "Bee Rx:35 Tx:2" in [n for n, _ in s2.conv.notes]  # the print before session 2's first block
    assert "app: Posted" not in text and "Session 2 (lines" in text


def test_clock_going_back_and_a_new_bring_up_split_sessions():
    a = fw_log([(100, "S", b"AT\r"), (102, "R", b"\r\nOK\r\n"), (5000, "S", b"AT+CSQ\r"),
                (5003, "R", b"\r\n+CSQ: 20,99\r\n\r\nOK\r\n")])
    b = fw_log([(50, "S", b"AT\r"), (52, "R", b"\r\nOK\r\n")])
    assert len(diagnose(a + b).sessions) == 2
    plain = "AT\nOK\nAT+CSQ\n+CSQ: 20,99\nOK\nRDY\n+CPIN: READY\nAT\nOK\nATE0\nOK\n"
    d = diagnose(plain)
    assert len(d.sessions) == 2 and [x.cmd for x in d.sessions[1].conv.exchanges] == ["AT", "ATE0"]
    # a reboot the host rides through (RDY, then the bring-up without AT) stays one session: the reboot
    # itself is the module's event
    d = diagnose("AT\nOK\nAT+CMQTTSTART\nOK\n+CMQTTSTART: 0\nRDY\nAT+CMQTTSTART\nOK\n+CMQTTSTART: 0\n")
    assert len(d.sessions) == 1 and one(d, "modem-rebooted").kind == "module"


# ------------------------------------------------------------------ plain terminal capture, every code explained

def test_plain_capture_with_echo_deferred_results_and_specific_fixes():
    """Issue 13 §4: '+CMQTTCONNECT: 0,11' read as 'no AT+CMQTTCONNECT was sent'; 'SIM not inserted' and errors
    7, 9, 32 got 'check the command's syntax/order against the manual'; data typed after '>' read as prose."""
    cap = "\n".join([
        "AT+CPIN?", "+CME ERROR: SIM not inserted",
        "AT+CMQTTSTART", "OK", "+CMQTTSTART: 7",
        "AT+CMQTTACCQ=0,\"dev1\"", "+CMQTTACCQ: 0,9", "ERROR",
        "AT+CCERTDOWN=\"ca.pem\",76",
        ">-----BEGIN CERTIFICATE-----",
        "MIIBszCCAVmgAwIBAgIUZ",
        "-----END CERTIFICATE-----",
        "OK",
        "AT+CMQTTCONNECT=0,\"tcp://broker.example.com:8883\",60,1", "OK", "+CMQTTCONNECT: 0,32",
        "AT+CMQTTCONNECT=0,\"tcp://broker.example.com:1883\",60,1", "OK", "+CMQTTCONNECT: 0,11",
    ])
    d = diagnose(cap)
    assert len(d.sessions) == 1 and d.fmt == "plain"
    generic = "check the command's syntax/order against the manual"
    for f in d.findings:
        assert generic not in (f.fix or ""), (f.id, f.title)
    by_code = {f.code: f for f in d.findings if f.code is not None}
    assert by_code["SIM not inserted"].meaning == "SIM not inserted" and "seat the SIM" in by_code["SIM not inserted"].fix
    assert by_code[7].fix == facts.cmqtt(7).fix and "APN" in by_code[7].fix
    assert by_code[9].fix == facts.cmqtt(9).fix and "AT+CMQTTSTART" in by_code[9].fix
    assert by_code[32].fix == facts.cmqtt(32).fix
    c11 = [f for f in d.findings if f.code == 11]
    assert c11 and all("no AT+CMQTTCONNECT was sent" not in f.cause for f in c11), [f.cause for f in c11]
    assert c11[0].kind == "network" and "CONNECT's own deferred result" in c11[0].cause
    cert = [x for x in d.conv.exchanges if x.name == "+CCERTDOWN"][0]
    assert [s for _, s in cert.data] == ["-----BEGIN CERTIFICATE-----", "MIIBszCCAVmgAwIBAgIUZ",
                                         "-----END CERTIFICATE-----"]
    assert not [n for n, _ in d.conv.notes if "MIIB" in n or "CERTIFICATE" in n]
    # deferred results are URCs: START's, CONNECT's two
    assert d.summary()["urcs"] == 3, d.summary()


# ------------------------------------------------------------------ secrets never printed

SECRETS = ("user-Secret1", "pw-Secret2", "apnpass-Secret3", "apnuser-Secret4", "9157",
           "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj", "keyline2-Secret5xyz")


def _secret_log():
    key = (b"-----BEGIN PRIVATE KEY-----\r\n" + SECRETS[5].encode() + b"\r\n" + SECRETS[6].encode()
           + b"\r\n-----END PRIVATE KEY-----\r\n")
    conn = b'AT+CMQTTCONNECT=0,"tcp://b.example.net:1883",60,1,"user-Secret1","pw-Secret2"\r'
    return peer_log([
        (10, "S", b'AT+CPIN="9157"\r'), (14, "R", b'AT+CPIN="9157"\r\r\nOK\r\n'),
        (20, "S", b'AT+CGAUTH=1,1,"apnpass-Secret3","apnuser-Secret4"\r'), (24, "R", b"\r\nOK\r\n"),
        (30, "S", b'AT+CCERTDOWN="clientkey.pem",%d\r' % len(key)), (34, "R", b"\r\n>"), (35, "S", key),
        (44, "R", key + b"\r\nOK\r\n"),
        (50, "S", b"AT+CMQTTSTART\r"), (53, "R", b"\r\nOK\r\n\r\n+CMQTTSTART: 0\r\n"),
        (60, "S", b'AT+CMQTTACCQ=0,"fm-1",0\r'), (63, "R", b"\r\nOK\r\n"),
        (70, "S", conn), (73, "R", conn + b"\r\nOK\r\n"), (2075, "R", b"\r\n+CMQTTCONNECT: 0,30\r\n"),
        (2080, "S", b"AT+CMQTTCONNECT?\r"),
        (2083, "R", b'\r\n+CMQTTCONNECT: 0,"tcp://b.example.net:1883",60,1,"user-Secret1","pw-Secret2"\r\n'
                    b"+CMQTTCONNECT: 1\r\n\r\nOK\r\n"),
    ]) + b"app: logging in as user-Secret1 with pw-Secret2\n"


def test_no_secret_in_any_output(tmp_path):
    """Issue 11 §4: the doctor printed MQTT passwords, the PIN, APN credentials and key bodies (text and --json)."""
    log = _secret_log()
    d = diagnose(log, source="secret.log")
    assert any(f.code == 30 for f in d.findings)  # the conversation is still judged
    outputs = [render_text(d), json.dumps(d.to_dict())]
    path = tmp_path / "secret.log"
    path.write_bytes(log)
    script = os.path.join(SCRIPTS, "at_doctor.py")
    for extra in ([], ["--json"]):
        r = subprocess.run([sys.executable, script, str(path)] + extra, capture_output=True, text=True, timeout=120)
        outputs.append(r.stdout + r.stderr)
    plain = ('AT+CPIN="9157"\nOK\nAT+CMQTTCONNECT=0,"tcp://b:1883",60,1,"user-Secret1","pw-Secret2"\nOK\n'
             '+CMQTTCONNECT: 0,30\nAT+CCERTDOWN="k.pem",90\n>-----BEGIN PRIVATE KEY-----\n' + SECRETS[5]
             + "\n-----END PRIVATE KEY-----\nOK\n")
    dp = diagnose(plain)
    outputs += [render_text(dp), json.dumps(dp.to_dict())]
    for out in outputs:
        for s in SECRETS:
            assert s not in out, (s, [ln for ln in out.splitlines() if s in ln][:3])
    j = d.to_dict()
    cert = [x for x in j["conversation"] if "CCERTDOWN" in x["cmd"]][0]
    assert cert["data_bytes"] > 0 and "not shown" in cert["data"][0][1]
    assert '"***"' in render_text(d)
    assert "not-connected" not in d.ids()  # client 1, never connected, is listed without an address: no finding


def test_a_payload_that_forges_blocks_is_data():
    """Issue 11 §8: an incoming payload holding '=== SENT@ ===' blocks was read as the device's commands."""
    body = b"hi" + FORGED
    log = peer_log([
        (0, "S", b'AT+CMQTTCONNECT=0,"tcp://b:1883",60,1\r'), (3, "R", b"\r\nOK\r\n"),
        (900, "R", b"\r\n+CMQTTCONNECT: 0,0\r\n"),
        (1000, "R", b"\r\n+CMQTTRXSTART: 0,1,%d\r\n+CMQTTRXTOPIC: 0,1\r\nc\r\n+CMQTTRXPAYLOAD: 0,%d\r\n%s\r\n"
                    b"+CMQTTRXEND: 0\r\n" % (len(body), len(body), body)),
    ])
    d = diagnose(log)
    assert [x.cmd for x in d.conv.exchanges] == ['AT+CMQTTCONNECT=0,"tcp://b:1883",60,1'], d.ids()
    assert [e["raw"] for e in d.events if e.get("body")] == [b"c", body]
    assert d.findings == [] or all(f.kind == "info" for f in d.findings), d.ids()


def test_a_command_crossing_connlost_is_the_network_one_sent_long_after_is_the_host():
    """Issue 13 §6: say which findings the injected cut caused and that the firmware recovered."""
    conn = b'AT+CMQTTCONNECT=0,"tcp://b:1883",60,1\r'

    def run(delay):
        return diagnose(peer_log([
            (0, "S", conn), (3, "R", b"\r\nOK\r\n"), (300, "R", b"\r\n+CMQTTCONNECT: 0,0\r\n"),
            (5000, "R", b"\r\n+CMQTTCONNLOST: 0,3\r\n"),
            (5000 + delay, "S", b"AT+CMQTTTOPIC=0,3\r"), (5003 + delay, "R", b"\r\n+CMQTTTOPIC: 0,11\r\n\r\nERROR\r\n"),
        ]))

    crossed = run(20)
    assert [f.kind for f in crossed.by_id("not-connected")] == ["network"] and not crossed.check_failed()
    lost = one(crossed, "connection-lost")
    assert not lost.data["restored"] and "ends before a successful reconnect" in lost.cause
    ignored = run(7000)
    f = one(ignored, "not-connected")
    assert f.kind == "host" and "7000 ms after that URC" in f.cause and ignored.check_failed()


def test_firmware_log_with_binary_payloads_has_no_length_error():
    """The same exact reading on the firmware's own ATLog (which writes non-UTF-8 bytes as '?', one per byte)."""
    p1 = crc_batch(1, b"\n\r\n") + b"\n"
    p2 = b'{"a":1}\n'
    script = [(0, "S", b'AT+CMQTTCONNECT=0,"tcp://b:1883",60,1\r'), (3, "R", b"\r\nOK\r\n"),
              (800, "R", b"\r\n+CMQTTCONNECT: 0,0\r\n")]
    t = 1000
    for p in (p1, p2):
        script += [(t, "S", b"AT+CMQTTPAYLOAD=0,%d\r" % len(p)), (t + 2, "R", b"\r\n>"), (t + 3, "S", p),
                   (t + 9, "R", b"\r\nOK\r\n")]
        t += 3001
    d = diagnose(fw_log(script))
    pays = [x for x in d.conv.exchanges if x.name == "+CMQTTPAYLOAD"]
    assert [x.data_len() for x in pays] == [len(p1), len(p2)] and "data-length" not in d.ids(), render_text(d)


def test_plain_capture_with_both_echoes_is_one_command():
    d = diagnose("AT+CSQ\nAT+CSQ\n+CSQ: 18,99\nOK\nAT+CPIN?\nAT+CPIN?\n+CPIN: READY\nOK\n")
    assert [x.cmd for x in d.conv.exchanges] == ["AT+CSQ", "AT+CPIN?"]
    assert all(x.echo and x.final == "OK" for x in d.conv.exchanges) and "command-failed" not in d.ids()


def test_make_sim_recovery_is_events_not_host_mistakes():
    """Seen in make sim's own AT log: after +CMQTTNONET the firmware's CONNECT is refused with 9, its DISC of the dead
    session answers 11, START fails with 7 while the network is down; later an incoming message whose URC came cut
    short makes the next TOPIC answer 14. None of it is a host error; the CONNECT before STOP/START is a warning."""
    conn = b'AT+CMQTTCONNECT=0,"tcp://b:1883",60,1\r'
    log = peer_log([
        (0, "S", b"AT+CMQTTSTART\r"), (3, "R", b"\r\n+CMQTTSTART: 0\r\n\r\nOK\r\n"),
        (5, "S", conn), (8, "R", b"\r\nOK\r\n"), (80, "R", b"\r\n+CMQTTCONNECT: 0,0\r\n"),
        (3000, "R", b"\r\n+CMQTTNONET\r\n"),
        (3807, "S", conn), (3810, "R", b"\r\n+CMQTTCONNECT: 0,9\r\n\r\nOK\r\n"),
        (4413, "S", b"AT+CMQTTDISC=0,60\r"), (4416, "R", b"\r\n+CMQTTDISC: 0,11\r\n\r\nERROR\r\n"),
        (4420, "S", b"AT+CMQTTREL=0\r"), (4423, "R", b"\r\nOK\r\n"),
        (4425, "S", b"AT+CMQTTSTOP\r"), (4430, "R", b"\r\n+CMQTTSTOP: 0\r\n\r\nOK\r\n"),
        (4435, "S", b"AT+CMQTTSTART\r"), (4440, "R", b"\r\n+CMQTTSTART: 7\r\n\r\nOK\r\n"),
        (9435, "S", b"AT+CMQTTSTART\r"), (9440, "R", b"\r\n+CMQTTSTART: 0\r\n\r\nOK\r\n"),
        (9445, "S", b'AT+CMQTTACCQ=0,"fm-1",0,4\r'), (9448, "R", b"\r\nOK\r\n"),
        (9450, "S", conn), (9455, "R", b"\r\nOK\r\n"), (9520, "R", b"\r\n+CMQTTCONNECT: 0,0\r\n"),
        (10696, "R", b"+CMQTTR"),
        (12048, "S", b"AT+CMQTTTOPIC=0,3\r"), (12051, "R", b"\r\n+CMQTTTOPIC: 0,14\r\n\r\nERROR\r\n"),
        (12153, "S", b"AT+CMQTTTOPIC=0,3\r"), (12155, "R", b"\r\n>"), (12156, "S", b"a/b"), (12160, "R", b"\r\nOK\r\n"),
    ])
    d = diagnose(log)
    errors = [f for f in d.findings if f.severity == "error"]
    assert errors == [] and not d.check_failed(), [(f.id, f.title) for f in errors]
    kinds = {(f.id, f.code): (f.kind, f.severity) for f in d.findings}
    assert kinds[("command-failed", 9)] == ("host", "warning")
    assert kinds[("command-failed", 11)] == ("info", "info")  # the DISC of a session already gone
    assert kinds[("command-failed", 7)] == ("network", "warning")
    assert kinds[("busy-async-pending", 14)] == ("network", "warning")
    assert "cut short" in one(d, "busy-async-pending").cause
    assert one(d, "connection-lost").data["restored"]


PIECES = st.one_of(st.binary(max_size=12), st.sampled_from(
    [b"\n", b"\r\n", b"\r", b"==================", b"\n==================\n", b"=== SENT@5 ===\n", b"=== RECV@7 ===\n",
     b"\xc3\xb7", b"\x00", b"AT+CSQ\r", b"\r\nOK\r\n", b"+CMQTTRXEND: 0\r\n", b">"]))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(PIECES, max_size=6).map(b"".join).filter(len), min_size=1, max_size=5),
       st.sampled_from(["bytes", "latin1-text"]))
def test_any_payload_is_read_exactly(payloads, writer):
    """Whatever the bytes of a payload (line breaks, terminators, block headers, NULs, UTF-8 look-alikes), the
    doctor reads exactly the declared number after '>' and makes no data-length finding."""
    script, t = [], 0
    for p in payloads:
        script += [(t, "S", b"AT+CMQTTPAYLOAD=0,%d\r" % len(p)), (t + 2, "R", b"\r\n>"), (t + 3, "S", p),
                   (t + 9, "R", b"\r\nOK\r\n")]
        t += 37
    log = (peer_log if writer == "bytes" else peer_log_text)(script)
    d = diagnose(log)
    pays = [x for x in d.conv.exchanges if x.name == "+CMQTTPAYLOAD"]
    assert [b"".join(x.data_raw) for x in pays] == payloads
    assert "data-length" not in d.ids() and len(d.sessions) == 1


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(PIECES, max_size=6).map(b"".join).filter(len), min_size=1, max_size=4),
       st.sampled_from(["bytes", "latin1-text"]), st.booleans())
def test_any_incoming_payload_is_read_exactly(payloads, writer, split):
    """The same for incoming messages: +CMQTTRXPAYLOAD: <idx>,<n> is followed by exactly n bytes, whatever they
    hold, in one read or cut across two; nothing inside them becomes a command, a URC or a finding."""
    script, t = [(0, "S", b'AT+CMQTTCONNECT=0,"tcp://b:1883",60,1\r'), (3, "R", b"\r\nOK\r\n"),
                 (90, "R", b"\r\n+CMQTTCONNECT: 0,0\r\n")], 1000
    for p in payloads:
        head = b"\r\n+CMQTTRXSTART: 0,1,%d\r\n+CMQTTRXTOPIC: 0,1\r\nc\r\n+CMQTTRXPAYLOAD: 0,%d\r\n" % (len(p), len(p))
        tail = b"\r\n+CMQTTRXEND: 0\r\n"
        if split and len(p) > 1:
            script += [(t, "R", head + p[:1]), (t + 1, "R", p[1:] + tail)]
        else:
            script.append((t, "R", head + p + tail))
        t += 1000
    log = (peer_log if writer == "bytes" else peer_log_text)(script)
    d = diagnose(log)
    got = [e["raw"] for e in d.events if e.get("body")]  # each message: its topic "c", then its payload
    assert b"".join(got) == b"".join(b"c" + p for p in payloads)
    assert len(d.conv.exchanges) == 1 and len(d.sessions) == 1 and d.findings == [], d.ids()
    ends = [u for u in d.conv.urcs if u[1] == "+CMQTTRXEND: 0"]
    assert len(ends) == len(payloads)


def test_a_busy_refusal_with_nothing_in_flight_is_the_modules_and_its_retry_is_fine():
    log = peer_log([
        (0, "S", b'AT+CMQTTCONNECT=0,"tcp://b:1883",60,1\r'), (3, "R", b"\r\nOK\r\n"),
        (80, "R", b"\r\n+CMQTTCONNECT: 0,0\r\n"),
        (1000, "S", b"AT+CMQTTTOPIC=0,3\r"), (1003, "R", b"\r\n+CMQTTTOPIC: 0,14\r\n\r\nERROR\r\n"),
        (1105, "S", b"AT+CMQTTTOPIC=0,3\r"), (1107, "R", b"\r\n>"), (1108, "S", b"a/b"), (1111, "R", b"\r\nOK\r\n"),
    ])
    d = diagnose(log)
    f = one(d, "command-failed")
    assert f.code == 14 and f.kind == "module" and "retry" in f.fix and not d.check_failed()


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(PIECES, st.sampled_from(
    [b"AT+CMQTTPAYLOAD=0,5\r", b"AT+CCERTDOWN=\"k.pem\",9\r", b"+CMQTTRXPAYLOAD: 0,4\r\n", b"RDY\r\n",
     b"=== SENT@3 ===\n", b"=== RECV@2 ===\n", b"\n==================\n", b"+CMQTTCONNLOST: 0,1\r\n"])), max_size=40))
def test_arbitrary_bytes_never_crash(pieces):
    d = diagnose(b"".join(pieces))
    render_text(d)
    json.dumps(d.to_dict())
    assert "doctor-rule-error" not in d.ids()
    assert not [n for s in d.sessions for n, _ in s.conv.notes if n.startswith("(doctor could not place")]
