"""No secret in any output (issue 11 §4): a short `make sim` run with known, distinctive secrets — the MQTT
password, the APN password (AT+CGAUTH), the SIM PIN (the simulated SIM asks for it: AT+CPIN="..."), the
command key, the WiFi password — and none of them may appear in sim.py's console, in any file of its
--out folder (at.log, firmware.log, modem.log, records, summary), in the transcript doctor's text or
--json report on that at.log, in scripts/validate.py's output on the pair of files, or in
`scripts/deploy.py --dry-run`'s. The private key body (certs.key) goes through validate/deploy; the
simulator run has no TLS (sim.py's broker is plain), so the CCERTDOWN path is covered by the AT
engine's and the doctor's own tests, not here.

sim.py takes no secrets file, so the run goes through a small wrapper (written below) that gives
run_host.py `--secrets`, the config a SIM PIN and the simulated SIM that PIN; the simulator does not
implement AT+CGAUTH, which the wrapper accepts with the simulator's own plain-OK handler.
"""
import base64
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEAP = os.environ.get("SIM_TEST_HEAP", "320K")  # as test_sim.py

# distinctive: none is a substring of anything the run would print by chance
SECRETS = {
    "mqtt_user": "fm-fleet-user",
    "mqtt_pass": "MqPw7f3Kq9ZtXv2Lr",
    "apn_user": "apn-login",
    "apn_pass": "ApPw4nR8tY6uJ1hQ",
    "hmac_key": "HkAb3dE5fG7hJ9kLmN2pQ4rS6tU8vW0xYz1",
    "wifi_ssid": "car-hotspot",
    "wifi_password": "WfPw2bC4dE6fG8hJ0",
}
PIN = "47195"
KEY_BODY = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7vXk3sEcReTkEyQ"
SECRET_VALUES = {k: SECRETS[k] for k in ("mqtt_pass", "apn_pass", "hmac_key", "wifi_password")}
SECRET_VALUES["sim_pin"] = PIN
SECRET_VALUES["key_body"] = KEY_BODY

WRAPPER = r"""
import json, os, subprocess, sys
sys.path.insert(0, os.path.join(%(root)r, "scripts"))
sys.path.insert(0, os.path.join(%(root)r, "host_tests"))
import sim
from peers.sim7600 import Sim7600

SECRETS_PATH, PIN = %(secrets)r, %(pin)r
Sim7600.COMMANDS = dict(Sim7600.COMMANDS, **{"+CGAUTH": "cmd_accept"})  # not simulated: accepted

_write_config = sim.write_config
def write_config(*a, **kw):
    path = _write_config(*a, **kw)
    with open(path) as f:
        cfg = json.load(f)
    cfg["cellular"]["sim_pin"] = PIN
    with open(path, "w") as f:
        json.dump(cfg, f)
    return path
sim.write_config = write_config

_start_modem = sim.start_modem
def start_modem(*a, **kw):
    m, pty, keys = _start_modem(*a, **kw)
    m.sim_pin = PIN  # the SIM asks for the PIN at every boot
    return m, pty, keys
sim.start_modem = start_modem

_Popen = subprocess.Popen
def Popen(cmd, *a, **kw):
    if isinstance(cmd, list) and any(str(c).endswith("run_host.py") for c in cmd):
        cmd = list(cmd) + ["--secrets", SECRETS_PATH]
    return _Popen(cmd, *a, **kw)
subprocess.Popen = Popen

sys.exit(sim.main(sys.argv[1:]))
"""


def _forms(v):
    """The secret as text, and as it could be dumped: hex, base64, repr-escaped bytes."""
    b = v.encode()
    return [v, b.hex(), b.hex().upper(), base64.b64encode(b).decode()]


def _leaks(text, where):
    found = []
    for name, v in SECRET_VALUES.items():
        for form in _forms(v):
            if form in text:
                i = text.index(form)
                found.append("%s (%s as %r) in %s: ...%s..." % (name, v, form, where, text[max(0, i - 80) : i + 40]))
    return found


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("nosecrets")
    key = d / "client.key"
    key.write_text("-----BEGIN PRIVATE KEY-----\n%s\n-----END PRIVATE KEY-----\n" % KEY_BODY)
    cert = d / "client.crt"
    cert.write_text("-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUcert\n-----END CERTIFICATE-----\n")
    ca = d / "ca.crt"
    ca.write_text("-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUca\n-----END CERTIFICATE-----\n")
    sec = dict(SECRETS)
    sec_path = d / "secrets.json"
    sec_path.write_text(json.dumps(sec))
    tls_sec = dict(SECRETS, certs={"ca": str(ca), "cert": str(cert), "key": str(key)})
    tls_sec_path = d / "secrets-tls.json"
    tls_sec_path.write_text(json.dumps(tls_sec))
    cfg = {"device_id": "car1", "broker": {"host": "mqtt.fleet-one.net", "port": 8883, "tls": True},
           "cellular": {"apn": "internet", "sim_pin": PIN}, "commands": {"enabled": True}}
    cfg_path = d / "config.json"
    cfg_path.write_text(json.dumps(cfg))
    return {"dir": d, "secrets": str(sec_path), "tls_secrets": str(tls_sec_path), "config": str(cfg_path)}


@pytest.fixture(scope="module")
def sim_run(files):
    out = files["dir"] / "sim-out"
    wrapper = files["dir"] / "sim_with_secrets.py"
    wrapper.write_text(WRAPPER % {"root": ROOT, "secrets": files["secrets"], "pin": PIN})
    p = subprocess.run([sys.executable, str(wrapper), "--out", str(out), "--heap", HEAP, "--duration", "15",
                        "--drain", "10"], capture_output=True, text=True, timeout=240, cwd=ROOT)
    return p, out


def test_sim_run_used_the_secrets_and_printed_none(sim_run):
    p, out = sim_run
    console = p.stdout + p.stderr
    assert p.returncode == 0, console[-4000:]
    at = (out / "at.log").read_bytes().decode("utf-8", "replace")
    # the secrets were used: the PIN was asked for and entered, the APN and MQTT logins were sent
    assert "AT+CPIN=" in at and "AT+CGAUTH=" in at and "AT+CMQTTCONNECT=" in at, at[:3000]
    assert json.load(open(out / "summary.json"))["records_received"] > 0
    leaks = _leaks(console, "sim.py's console")
    names = sorted(os.listdir(out))
    assert {"at.log", "firmware.log", "modem.log", "summary.json", "summary.txt"} <= set(names), names
    for n in names:
        path = out / n
        if path.is_file() and n != "modem.log":  # the simulator's own capture: the next test
            leaks += _leaks(path.read_bytes().decode("utf-8", "replace"), "sim-out/" + n)
    assert not leaks, "\n".join(leaks)


def test_sim_run_modem_log_has_no_secret(sim_run):
    p, out = sim_run
    assert p.returncode == 0
    leaks = _leaks((out / "modem.log").read_bytes().decode("utf-8", "replace"), "sim-out/modem.log")
    assert not leaks, "\n".join(leaks)


def test_doctor_on_that_at_log_prints_no_secret(sim_run):
    _, out = sim_run
    leaks = []
    for extra in ([], ["--json"]):
        p = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "at_doctor.py"), str(out / "at.log")] + extra,
                           capture_output=True, text=True, timeout=60, cwd=ROOT)
        text = p.stdout + p.stderr
        assert "CPIN" in text or "AT+CPIN" in text or extra, text[-2000:]  # it read the conversation
        leaks += _leaks(text, "at_doctor.py %s" % " ".join(extra))
    assert not leaks, "\n".join(leaks)


def _run(script, *args):
    p = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", script)] + list(args), capture_output=True,
                       text=True, timeout=60, cwd=ROOT)
    return p.returncode, p.stdout + p.stderr


def test_validate_prints_no_secret_valid_or_not(files, tmp_path):
    leaks = []
    rc, text = _run("validate.py", "--config", files["config"], "--secrets", files["tls_secrets"])
    assert rc == 0 and "valid" in text, text
    leaks += _leaks(text, "validate.py (valid)")
    # refused: a secret with a quote, one with CR/LF, a short key, a key given inline instead of a file
    bad = dict(SECRETS, mqtt_pass=SECRETS["mqtt_pass"] + '"', apn_pass=SECRETS["apn_pass"] + "\r\n",
               hmac_key=SECRETS["hmac_key"][:10], certs={"ca": "", "cert": "c.crt", "key": KEY_BODY})
    sec = tmp_path / "bad-secrets.json"
    sec.write_text(json.dumps(bad))
    rc, text = _run("validate.py", "--config", files["config"], "--secrets", str(sec))
    assert rc == 2 and "secrets.mqtt_pass" in text and "secrets.apn_pass" in text and "secrets.hmac_key" in text, text
    leaks += _leaks(text, "validate.py (refused)")
    assert not leaks, "\n".join(leaks)


def test_validate_masks_a_refused_pin_and_a_pasted_key(files, tmp_path):
    cfg = json.loads(open(files["config"]).read())
    cfg["cellular"]["sim_pin"] = PIN + "x"  # not digits only: refused, and the validator's message shows it
    cp = tmp_path / "bad-pin-config.json"
    cp.write_text(json.dumps(cfg))
    sec = json.loads(open(files["tls_secrets"]).read())
    sec["certs"]["key"] = "-----BEGIN PRIVATE KEY-----\n%s\n-----END PRIVATE KEY-----" % KEY_BODY  # pasted, not a file
    sp = tmp_path / "pasted-key-secrets.json"
    sp.write_text(json.dumps(sec))
    rc, text = _run("validate.py", "--config", str(cp), "--secrets", str(sp))
    assert rc == 2 and "cellular.sim_pin" in text and "certs.key" in text and "***" in text, text
    leaks = _leaks(text, "validate.py (refused PIN, pasted key)")
    assert not leaks, "\n".join(leaks)


def test_the_validators_own_message_does_not_show_a_refused_pin():
    from telelogger import config as tconfig

    with pytest.raises(tconfig.ConfigError) as e:
        tconfig.validate({"cellular": {"sim_pin": PIN + "x"}})
    assert "cellular.sim_pin" in str(e.value)
    assert PIN not in str(e.value), str(e.value)


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory):
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    import build

    out = str(tmp_path_factory.mktemp("fwbuild") / "firmware")
    build.build(out=out)
    return out


def test_deploy_dry_run_prints_the_plan_and_no_secret(files, build_dir):
    rc, text = _run("deploy.py", "--dry-run", "--board", "oneplus-b", "--build", build_dir, "--config", files["config"],
                    "--secrets", files["tls_secrets"])
    assert rc == 0, text
    assert "dry run: would copy" in text and "secrets.json" in text and "config.json" in text, text
    assert "connecting" not in text  # no board touched
    for name in ("ca.crt", "client.crt", "client.key"):
        assert name in text, text  # the certificates the secrets name are in the plan
    leaks = _leaks(text, "deploy.py --dry-run")
    # a refused pair: the error says which key, never the value
    bad = dict(SECRETS, mqtt_pass=SECRETS["mqtt_pass"] + '"')
    sec = files["dir"] / "bad-deploy-secrets.json"
    sec.write_text(json.dumps(bad))
    rc, text = _run("deploy.py", "--dry-run", "--board", "oneplus-b", "--build", build_dir, "--config", files["config"],
                    "--secrets", str(sec))
    assert rc == 2 and "secrets.mqtt_pass" in text, text
    leaks += _leaks(text, "deploy.py --dry-run (refused)")
    assert not leaks, "\n".join(leaks)


def test_deploy_without_port_needs_dry_run():
    rc, text = _run("deploy.py", "--board", "oneplus-b")
    assert rc == 2 and "--port is required" in text, text


def test_redeploy_says_when_the_boards_secrets_differ_and_are_kept(tmp_path, build_dir):
    """Issue 11 §10: a redeploy that keeps the board's secrets says whether they differ from the ones given
    (a key rotation that silently did not happen), comparing digests only: no secret crosses or is printed."""
    from test_build_deploy import HostBoardOverPty, deploy, filled

    out = build_dir
    (tmp_path / "board-fs").mkdir()
    hb = HostBoardOverPty(tmp_path / "board-fs")
    try:
        cfg_path, sec_path = filled(tmp_path)
        common = ["--port", hb.port, "--board", "oneplus-h", "--build", out, "--mpremote-args", "resume", "--no-reset",
                  "--config", cfg_path]
        with open(os.path.join(hb.fs, "secrets.json"), "w") as f:
            f.write('{"mqtt_pass": "%s-old"}' % SECRETS["mqtt_pass"])
        rc, so, se = deploy(*common, "--secrets", sec_path)
        assert rc == 0, so + se
        assert "differs from %s and was NOT replaced" % sec_path in so, so
        assert SECRETS["mqtt_pass"] not in so + se
        with open(sec_path, "rb") as a, open(os.path.join(hb.fs, "secrets.json"), "wb") as b:
            b.write(a.read())
        rc, so, se = deploy(*common, "--secrets", sec_path)
        assert rc == 0 and "identical to %s" % sec_path in so and "differs" not in so, so + se
    finally:
        hb.close()


def test_every_command_with_credentials_quotes_them():
    # at.reader.ATError redacts an AT+C... command only when it has a '"' (at/redact.py's commands all quote their
    # credentials), so AT+CMQTTREL=0 failing in a recovery does not load at.redact: each place the firmware
    # formats one of those commands quotes what follows the '='
    import re

    fw = os.path.join(ROOT, "firmware")
    src = {}
    for d, _, names in os.walk(fw):
        for n in names:
            if n.endswith(".py") and n != "redact.py":
                with open(os.path.join(d, n)) as f:
                    src[os.path.relpath(os.path.join(d, n), fw)] = f.read()
    with open(os.path.join(fw, "at", "redact.py")) as f:
        prefixes = re.findall(r'\("(AT\+C[A-Z]+=)", \d\)', f.read())
    assert sorted(prefixes) == ["AT+CGAUTH=", "AT+CMQTTCONNECT=", "AT+CPIN="], prefixes
    seen = 0
    for path, text in src.items():
        for p in prefixes:
            for m in re.finditer(re.escape(p) + r"([^'\n]*)'", text):
                seen += 1
                assert '"%s"' in m.group(1), (path, p + m.group(1))
    assert seen >= 3, seen  # (CPIN, CGAUTH, CMQTTCONNECT: found where they are made)
