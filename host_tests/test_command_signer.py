"""Signers that do not share the firmware's code, against the firmware (issue 11 §1, §7): the worked
example of FORMAT.md "Remote commands" read from the file itself, a signer written here from that
section (stdlib hmac), the openssl command line FORMAT.md gives, and scripts/cmdsign.py (CLI)."""
import asyncio
import hashlib
import hmac
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from telelogger.commands import CommandHandler

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FORMAT_MD = os.path.join(ROOT, "firmware", "telelogger", "FORMAT.md")
CMDSIGN = os.path.join(ROOT, "scripts", "cmdsign.py")
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import cmdsign  # noqa: E402


def _example():
    text = open(FORMAT_MD, encoding="utf-8").read()
    sec = text[text.index("### Worked example") :]
    return {m.group(1): m.group(2) for m in re.finditer(r"^    (\w+): +(\S.*)$", sec, re.M)}


# -------- a signer written from FORMAT.md alone (nothing shared with the firmware or cmdsign.py)
def _fm_mac(key, dev, direction, body):
    return hmac.new(key.encode(), b"fm-cmd-v2\n" + dev.encode() + b"\n" + direction + b"\n" + body,
                    hashlib.sha256).hexdigest()


def _fm_seal(key, dev, body, direction=b"req"):
    return body[:-1] + b',"mac":"' + _fm_mac(key, dev, direction, body).encode() + b'"}'


def _fm_open_reply(key, dev, payload):
    body, mac = payload[:-74] + b"}", payload[-66:-2]
    assert payload[-74:-66] == b',"mac":"' and payload[-2:] == b'"}', payload
    assert hmac.compare_digest(mac, _fm_mac(key, dev, b"rep", body).encode()), payload
    return json.loads(body)


def _device(key, dev, utc_ms, calls):
    def mk(name):
        async def fn(args):
            calls.append((name, args))
            return {"done": name}

        return fn

    return CommandHandler(key, None, {c: mk(c) for c in ("ping", "status", "reboot", "set_interval", "flush")},
                          utc_ms=lambda: utc_ms, device_id=dev)


def _handle(h, payload):
    return asyncio.run(h.handle(payload))


def test_format_md_example_is_what_the_firmware_accepts():
    ex = _example()
    key, dev, body = ex["key"], ex["device"], ex["body"].encode()
    assert _fm_mac(key, dev, b"req", body) == ex["mac"]
    assert _fm_seal(key, dev, body) == ex["payload"].encode()
    assert cmdsign.canonical(json.loads(body)) == body  # the example is in cmdsign's canonical form
    assert cmdsign.sign(key, dev, json.loads(body)) == ex["payload"].encode()
    calls = []
    h = _device(key, dev, json.loads(body)["ts"] * 1000, calls)
    r = _fm_open_reply(key, dev, _handle(h, ex["payload"].encode()))
    assert r["ok"] is True and r["n"] == 1764000000000 and r["re"] == ex["mac"][:16], r
    assert calls == [("reboot", {"delay_ms": 1000})]
    other = _device(key, dev[:-1] + "4", json.loads(body)["ts"] * 1000, calls)  # same key, another device
    r = _fm_open_reply(key, dev[:-1] + "4", _handle(other, ex["payload"].encode()))
    assert r["ok"] is False and r["error"] == "bad mac" and len(calls) == 1


def test_format_md_key_derivation():
    ex = _example()
    want = hmac.new(ex["master"].encode(), b"fm-cmd-key-v1\n" + ex["device"].encode(), hashlib.sha256).hexdigest()
    assert want == ex["derived"] == cmdsign.derive_key(ex["master"], ex["device"])


def test_openssl_signer_interoperates():
    """The shell signer of FORMAT.md (printf | openssl dgst -hmac), a different implementation."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed (the FORMAT.md one-liner needs it)")
    key, dev = "k-" + "Zq81xV" * 6, "car_7-B"
    body = b'{"cmd": "set_interval", "args": {"target": "obd.pids.0d", "ms": 2000}, "n": 42, "ts": 1764000100, "nonce": "x\\u00e9"}'
    out = subprocess.run(["sh", "-c", "printf 'fm-cmd-v2\\n%s\\nreq\\n%s' \"$DEV\" \"$BODY\" | openssl dgst -sha256 -hmac \"$KEY\""],
                         env={"PATH": os.environ["PATH"], "DEV": dev, "BODY": body.decode(), "KEY": key},
                         capture_output=True, text=True, check=True).stdout
    mac = out.strip().split()[-1]
    assert len(mac) == 64
    payload = body[:-1] + b',"mac":"' + mac.encode() + b'"}'
    calls = []
    r = _fm_open_reply(key, dev, _handle(_device(key, dev, 1764000100000, calls), payload))
    assert r["ok"] is True and r["nonce"] == "x\u00e9", r
    assert calls == [("set_interval", {"target": "obd.pids.0D", "ms": 2000})]
    assert cmdsign.verify_reply(key, dev, _handle(_device(key, dev, 1764000100000, []), payload))["ok"]


def _cli(*args, stdin=None):
    return subprocess.run([sys.executable, CMDSIGN] + list(args), input=stdin, capture_output=True)


def test_cmdsign_cli_sign_verify_and_challenge(tmp_path):
    key, dev = "cli-key-" + "Pq7Rt2Wx9Yz4" * 3, "TRUCK9"
    kf = tmp_path / "TRUCK9.key"
    kf.write_text(key + "\n")
    calls = []
    h = _device(key, dev, None, calls)  # no UTC yet: the first attempt gets a challenge
    p = _cli("sign", "--key", str(kf), "--device", dev, "--nonce", "op-1", "reboot", '{"delay_ms": 500}')
    assert p.returncode == 0 and p.stdout.endswith(b'"}'), p  # no trailing newline when piped
    r = _fm_open_reply(key, dev, _handle(h, p.stdout))
    assert r["ok"] is False and "no UTC" in r["error"] and calls == []
    p = _cli("sign", "--key", str(kf), "--device", dev, "--chal", r["chal"], "reboot", '{"delay_ms": 500}')
    reply = _handle(h, p.stdout)
    assert calls == [("reboot", {"delay_ms": 500})]
    rf = tmp_path / "reply"
    rf.write_bytes(reply + b"\n")
    v = _cli("verify", "--key", str(kf), "--device", dev, str(rf))
    assert v.returncode == 0 and json.loads(v.stdout)["ok"] is True, v
    v = _cli("verify", "--key", str(kf), "--device", "TRUCK8", stdin=reply)
    assert v.returncode == 2 and b"mismatch" in v.stderr, v
    again = _fm_open_reply(key, dev, _handle(h, p.stdout))  # the same payload: a replay
    assert again["ok"] is False and "replay" in again["error"] and len(calls) == 1


def test_cmdsign_derive_and_key_files(tmp_path):
    master = tmp_path / "fleet.master"
    master.write_text("fleet-master-" + "Jk3Lm9Np2Qr8" * 3 + "\n")
    k = _cli("key", "--derive", str(master), "--device", "VAN01")
    derived = k.stdout.decode().strip()
    assert k.returncode == 0 and re.fullmatch(r"[0-9a-f]{64}", derived), k
    secrets = tmp_path / "secrets.json"  # a device's secrets.json is a key file too
    secrets.write_text(json.dumps({"hmac_key": derived, "mqtt_pass": "x"}))
    a = _cli("sign", "--derive", str(master), "--device", "VAN01", "--n", "7", "--ts", "1764000000", "ping")
    b = _cli("sign", "--key", str(secrets), "--device", "VAN01", "--n", "7", "--ts", "1764000000", "ping")
    assert a.returncode == b.returncode == 0 and a.stdout == b.stdout, (a, b)
    calls = []
    assert _fm_open_reply(derived, "VAN01", _handle(_device(derived, "VAN01", 1764000000000, calls), a.stdout))["ok"]
    other = _cli("key", "--derive", str(master), "--device", "VAN02").stdout.decode().strip()
    assert other != derived  # per-device keys


def test_cmdsign_refuses_keys_from_the_repository(tmp_path):
    tracked = os.path.join(ROOT, "firmware", "secrets.example.json")
    p = _cli("sign", "--key", tracked, "--device", "X1", "ping")
    assert p.returncode == 2 and b"tracked by git" in p.stderr, p
    ph = tmp_path / "k"
    ph.write_text("replace-with-32-random-characters")
    p = _cli("sign", "--key", str(ph), "--device", "X1", "ping")
    assert p.returncode == 2 and b"no usable key" in p.stderr, p
    p = _cli("sign", "--key", str(tmp_path / "missing"), "--device", "X1", "ping")
    assert p.returncode == 2 and b"cmdsign:" in p.stderr, p


def test_cmdsign_canonical_body():
    b = cmdsign.canonical({"b": [1, True, None], "a": "\u00e9\"\n\U0001F600", "c": {"z": 1, "y": -2}})
    assert b == b'{"a":"\\u00e9\\"\\n\\ud83d\\ude00","b":[1,true,null],"c":{"y":-2,"z":1}}'
    with pytest.raises(ValueError, match="floats"):
        cmdsign.canonical({"args": {"ms": 1.5}})
    with pytest.raises(ValueError, match="device id"):
        cmdsign.sign("k", "a\nb", {"cmd": "ping"})


def test_gitignore_keeps_secrets_and_certificates_out():
    """Issue 11 §10: secrets, keys and certificates are ignored; the example secrets stay tracked."""
    if shutil.which("git") is None or not os.path.exists(os.path.join(ROOT, ".git")):
        pytest.skip("not a git checkout")
    paths = ["secrets.json", "firmware/secrets.json", "firmware/secrets.car7.json", "certs/ca.pem", "client.key",
             "firmware/certs/client.crt", "keys/ABC123", "fleet.master"]
    r = subprocess.run(["git", "-C", ROOT, "check-ignore", "--no-index"] + paths, capture_output=True, text=True)
    assert sorted(r.stdout.split()) == sorted(paths), r
    r = subprocess.run(["git", "-C", ROOT, "check-ignore", "--no-index", "firmware/secrets.example.json"],
                       capture_output=True, text=True)
    assert r.returncode == 1 and r.stdout == "", r
