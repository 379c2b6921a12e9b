"""`make validate`: a config checked as the device and the deploy will check it, with no board."""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EX = os.path.join(ROOT, "firmware")


def validate(*args):
    p = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "validate.py")] + list(args),
                       capture_output=True, text=True, timeout=60, cwd=ROOT)
    return p.returncode, p.stdout, p.stderr


def owner_files(tmp_path, cfg_edit=None, sec_edit=None):
    cfg = json.load(open(os.path.join(EX, "config.example.json")))
    sec = json.load(open(os.path.join(EX, "secrets.example.json")))
    cfg["broker"]["host"] = "broker.fleet.test"
    sec["hmac_key"] = "Zq8Lr2Vx5Nc7Hd1Ks4Pw9Tb3Mf6Jg0Ya"
    sec["mqtt_pass"] = "b0ard-pass"
    (tmp_path / "certs").mkdir(exist_ok=True)
    (tmp_path / "certs" / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    if cfg_edit:
        cfg_edit(cfg)
    if sec_edit:
        sec_edit(sec)
    c, s = tmp_path / "config.json", tmp_path / "secrets.json"
    c.write_text(json.dumps(cfg))
    s.write_text(json.dumps(sec))
    return str(c), str(s)


def test_a_filled_in_config_is_valid(tmp_path):
    c, s = owner_files(tmp_path)
    rc, out, err = validate("--config", c, "--secrets", s)
    assert rc == 0, out + err
    assert "valid" in out and "broker.fleet.test" in out


def test_the_shipped_example_is_refused_with_the_reasons():
    rc, out, err = validate("--config", os.path.join(EX, "config.example.json"), "--secrets",
                            os.path.join(EX, "secrets.example.json"))
    assert rc == 2
    assert "3 errors" in err, err  # every mistake at once, not the first
    assert "certs.ca" in err and "certs/ca.pem" in err, err
    assert "broker.host" in err and "mqtt.example.com" in err, err
    assert "hmac_key" in err and "placeholder" in err, err


def test_a_missing_file_is_named(tmp_path):
    rc, out, err = validate("--config", str(tmp_path / "nope.json"))
    assert rc == 2 and "file not found" in err and "nope.json" in err


def test_a_bad_value_names_the_key(tmp_path):
    c, s = owner_files(tmp_path, cfg_edit=lambda d: d["queue"].update(max_bytes="big"))
    rc, out, err = validate("--config", c, "--secrets", s)
    assert rc == 2 and "queue.max_bytes" in err and "big" in err, err
    assert "Traceback" not in out + err


def test_make_validate_runs_without_a_board(tmp_path):
    c, s = owner_files(tmp_path)
    p = subprocess.run(["make", "--no-print-directory", "-s", "validate", "CONFIG=" + c, "SECRETS=" + s],
                       capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "valid" in p.stdout


def test_tls_on_the_plain_port_is_warned_not_refused(tmp_path):
    c, s = owner_files(tmp_path, cfg_edit=lambda d: d["broker"].update(port=1883))
    rc, out, err = validate("--config", c, "--secrets", s)
    assert rc == 0, out + err
    assert "warning: broker.port 1883 with broker.tls true" in out, out
