"""scripts/fleet.py without a broker, and FORMAT.md's config_set example against the firmware: a
signer written here from the page (stdlib hmac, nothing shared with the firmware or cmdsign.py)
makes the documented MAC, and the firmware's CommandHandler + telelogger/cfgcmd.py give the
documented reply. The broker path is test_fleet_e2e.py."""
import argparse
import asyncio
import hashlib
import hmac
import json
import os
import re
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
FORMAT_MD = os.path.join(ROOT, "firmware", "telelogger", "FORMAT.md")
FLEET = os.path.join(ROOT, "scripts", "fleet.py")
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import fleet  # noqa: E402


def _page():
    text = open(FORMAT_MD, encoding="utf-8").read()
    ex = text[text.index("### Worked example (") :]
    ex = ex[: ex.index("\n## ")] if "\n## " in ex else ex  # that section only
    base = {m.group(1): m.group(2) for m in re.finditer(r"^    (\w+): +(\S.*)$", ex, re.M)}
    cs = text[text.index("### Worked example of a config_set request") : text.index("### Worked example (")]
    mine = {m.group(1): m.group(2) for m in re.finditer(r"^    (\w+): +(\S.*)$", cs, re.M)}
    return base, mine, cs


def _mac(key, dev, direction, body):  # FORMAT.md "Envelope", from the page
    return hmac.new(key.encode(), b"fm-cmd-v2\n" + dev.encode() + b"\n" + direction + b"\n" + body,
                    hashlib.sha256).hexdigest()


def test_format_md_config_set_example_against_the_firmware(tmp_path):
    from loopfakes import make
    from telelogger.cmdhandlers import handlers
    from telelogger.commands import CommandHandler

    base, mine, _ = _page()
    key, dev, body = base["key"], base["device"], mine["request"].encode()
    assert _mac(key, dev, b"req", body) == mine["its_mac"]
    payload = body[:-1] + b',"mac":"' + mine["its_mac"].encode() + b'"}'
    cfg_file = tmp_path / "config.json"
    running = {"device_id": dev, "broker": {"host": "broker.test", "port": 1883, "tls": False}}
    cfg_file.write_text(json.dumps(running))
    c = dict(running, secrets={"hmac_key": key})
    t = make(c)[0]
    t.cfg_path = str(cfg_file)  # config.load's config_path, as loopinit keeps it
    h = CommandHandler(key, None, handlers(t), utc_ms=lambda: json.loads(body)["ts"] * 1000, device_id=dev)
    reply = asyncio.run(h.handle(payload))
    rb, rmac = reply[:-74] + b"}", reply[-66:-2].decode()
    assert reply[-74:-66] == b',"mac":"' and rmac == _mac(key, dev, b"rep", rb)
    r = json.loads(rb)
    assert r == {"cmd": "config_set", "n": 1764000000001, "ok": True, "re": mine["its_mac"][:16],
                 "result": {"now": {"intervals.status_ms": 60000, "standby.voltage_off": 11.5}, "restart": {},
                            "unchanged": []}}, r
    assert t.status_ms == 60000 and json.loads(cfg_file.read_text())["standby"] == {"voltage_off": 11.5}
    bad = json.loads(body)
    bad["args"]["set"]["intervals.status_ms"] = 5
    bad["n"] += 1
    bb = json.dumps(bad, sort_keys=True, separators=(",", ":")).encode()
    r = json.loads(asyncio.run(h.handle(bb[:-1] + b',"mac":"' + _mac(key, dev, b"req", bb).encode() + b'"}'))[:-74] + b"}")
    assert r["ok"] is False and r["key"] == "intervals.status_ms", r
    assert r["expected"] == "an integer between 1000 and 86400000"
    assert r["error"] == "config_set failed: intervals.status_ms: expected an integer between 1000 and 86400000, got 5"
    assert json.loads(cfg_file.read_text())["standby"] == {"voltage_off": 11.5}  # unchanged by the refusal


def test_device_lists_csv_and_json(tmp_path):
    (tmp_path / "a.key").write_text("k" * 40)
    csvf = tmp_path / "fleet.csv"
    csvf.write_text("# the fleet\nid,key,host,port,tls\nCAR1,a.key,,,\nCAR2,,mqtt.b,8884,true\n")
    d = fleet.load_devices(str(csvf))
    assert d[0] == {"id": "CAR1", "key": str(tmp_path / "a.key")}
    assert d[1] == {"id": "CAR2", "host": "mqtt.b", "port": 8884, "tls": True}
    js = tmp_path / "fleet.json"
    js.write_text(json.dumps({"defaults": {"derive": "fleet.master", "prefix": "fm"}, "devices": [{"id": "VAN1"}]}))
    assert fleet.load_devices(str(js)) == [{"id": "VAN1", "derive": str(tmp_path / "fleet.master"), "prefix": "fm"}]
    for text, msg in (("id,kee\nX,1\n", "unknown column kee"), ("id\nX\nX\n", "X listed twice"),
                      ("id,port\nX,eighty\n", "port: expected a number"), ('[{"id": "a/b"}]', "id: expected"),
                      ("id\n", "no devices"), ('{"devices": 3}', "expected a list")):
        (tmp_path / "bad.csv").write_text(text)
        with pytest.raises(fleet.UsageError, match=msg):
            fleet.load_devices(str(tmp_path / "bad.csv"))


def test_keys_come_from_files_the_user_names(tmp_path):
    (tmp_path / "m.master").write_text("fleet-master-" + "Jk3Lm9Np2Qr8" * 3)
    d = {"id": "VAN1", "derive": str(tmp_path / "m.master")}
    import cmdsign

    assert fleet.device_key(d) == cmdsign.derive_key("fleet-master-" + "Jk3Lm9Np2Qr8" * 3, "VAN1")
    assert fleet.device_key({"id": "VAN1"}, str(tmp_path / "m.master")) == fleet.device_key(d)
    with pytest.raises(fleet.UsageError, match="VAN1: no key"):
        fleet.device_key({"id": "VAN1"})
    with pytest.raises(fleet.UsageError, match="tracked by git"):
        fleet.device_key({"id": "X", "key": os.path.join(ROOT, "firmware", "secrets.example.json")})


def test_commands_from_the_command_line():
    def cmd(*argv):
        ap = ["--devices", "x"] + list(argv)
        import argparse

        ns = argparse.Namespace(op=ap[2])
        if ns.op == "config":
            ns.what, ns.items = ap[3], ap[4:]
        elif ns.op == "dtc":
            ns.what, ns.confirm = ap[3], "--confirm" in ap
        else:
            ns.cmd, ns.args = ap[3], (ap[4] if len(ap) > 4 else "{}")
        return fleet.build_command(ns)

    assert cmd("config", "set", "intervals.status_ms=60000", "encoding=json", "obd.pids={\"0C\": 1000}",
               "standby.voltage_off=11.5", "intervals.record_ms=null") == (
        "config_set", {"set": {"intervals.status_ms": 60000, "encoding": "json", "obd.pids": {"0C": 1000},
                               "standby.voltage_off": 11.5, "intervals.record_ms": None}})
    assert cmd("config", "get") == ("config_get", {})
    assert cmd("config", "get", "broker") == ("config_get", {"key": "broker"})
    assert cmd("dtc", "read") == ("dtc_read", {})
    assert cmd("dtc", "clear", "--confirm") == ("dtc_clear", {"confirm": True})
    assert cmd("send", "reboot", '{"delay_ms": 100}') == ("reboot", {"delay_ms": 100})
    for argv, msg in ((("dtc", "clear"), "--confirm"), (("config", "set", "novalue"), "KEY=VALUE"),
                      (("config", "set"), "KEY=VALUE"), (("send", "ping", "[1]"), "JSON object")):
        with pytest.raises(fleet.UsageError, match=msg):
            cmd(*argv)


def test_cli_exit_codes_without_a_broker(tmp_path):
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there
    (tmp_path / "a.key").write_text("k-" + "Zq81xV" * 6)
    (tmp_path / "d.csv").write_text("id,key\nCAR1,a.key\n")
    p = subprocess.run([sys.executable, FLEET, "--devices", str(tmp_path / "d.csv"), "--broker", "127.0.0.1:%d" % port,
                        "send", "ping"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and p.stdout.startswith("CAR1 FAILED broker 127.0.0.1:%d" % port), (p.stdout, p.stderr)
    assert "0 of 1 devices ok" in p.stdout
    p = subprocess.run([sys.executable, FLEET, "--devices", str(tmp_path / "missing.csv"), "dtc", "read"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and p.stderr.startswith("fleet: device list") and p.stdout == "", p


@pytest.mark.skipif(not os.path.exists("/usr/sbin/mosquitto") and not __import__("shutil").which("mosquitto"),
                    reason="mosquitto not installed")
def test_challenge_flow_and_derived_keys_over_mosquitto(tmp_path):
    """Two devices run by the firmware's CommandHandler behind a paho client: CAR1 has no UTC yet
    (fleet.py signs again with the reply's chal), CAR2 knows UTC and has a key derived from the
    fleet master. Both answer: exit 0, one line each."""
    import paho.mqtt.client as mqtt
    from sim import Broker

    import cmdsign
    from telelogger.commands import CommandHandler

    master = "fleet-master-" + "Jk3Lm9Np2Qr8" * 3
    (tmp_path / "fleet.master").write_text(master)
    k1 = "car1-key-" + "Zq81xVb7" * 4
    (tmp_path / "car1.key").write_text(k1)
    (tmp_path / "d.json").write_text(json.dumps([{"id": "CAR1", "key": "car1.key"}, {"id": "CAR2"}]))
    seen = {"CAR1": [], "CAR2": []}

    def handler(dev, key, utc):
        async def ping(args):
            seen[dev].append("ran")
            return {"pong": True}

        return CommandHandler(key, None, {"ping": ping}, utc_ms=utc, device_id=dev)

    import time as _t

    devs = {"CAR1": handler("CAR1", k1, None),
            "CAR2": handler("CAR2", cmdsign.derive_key(master, "CAR2"), lambda: int(_t.time() * 1000))}
    broker = Broker(workdir=str(tmp_path), persistence=True).start()
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="fake-devices")
    try:
        def on_msg(client, userdata, m):
            dev = m.topic.split("/")[1]
            seen[dev].append("msg")
            client.publish("fm/%s/reply" % dev, asyncio.run(devs[dev].handle(m.payload)), qos=1)

        ready = __import__("threading").Event()
        c.on_message = on_msg
        c.on_connect = lambda cl, u, f, rc, p=None: cl.subscribe([("fm/CAR1/cmd", 1), ("fm/CAR2/cmd", 1)])
        c.on_subscribe = lambda *a: ready.set()
        c.connect("127.0.0.1", broker.port, 30)
        c.loop_start()
        assert ready.wait(10)
        p = subprocess.run([sys.executable, FLEET, "--devices", str(tmp_path / "d.json"), "--broker",
                            "127.0.0.1:%d" % broker.port, "--prefix", "fm", "--master", str(tmp_path / "fleet.master"),
                            "--timeout", "20", "send", "ping"], capture_output=True, text=True, timeout=90)
    finally:
        c.loop_stop()
        c.disconnect()
        broker.stop()
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert seen["CAR1"] == ["msg", "msg", "ran"] and seen["CAR2"] == ["msg", "ran"], seen
    lines = p.stdout.splitlines()
    assert 'CAR1 ok {"pong":true}' in lines and 'CAR2 ok {"pong":true}' in lines, p.stdout
    assert "2 of 2 devices ok" in p.stdout


class _DeviceLink:
    """fleet.ota_device's link to one device run in-process: the firmware's otacmd/ota on CPython
    (telelogger/FORMAT.md "OTA updates"'s device side), with chunks dropped or altered on the way as asked."""

    def __init__(self, root, alter=None, drop_every=0):
        sys.path.insert(0, os.path.join(HERE, "mp"))
        import mp_ota_kit as K

        self.K = K
        self.t = K.T(root)
        self.a = argparse.Namespace(timeout=5, gap_ms=0, wait=0, ota_rounds=3)
        self.alter = alter
        self.drop_every = drop_every
        self.n = 0
        self.refusals = []

    def command(self, d, name, args=None):
        import asyncio

        from telelogger import otacmd

        try:
            return {"ok": True, "result": asyncio.run(otacmd.handle(self.t, name, args or {}))}
        except ValueError as e:
            return {"ok": False, "error": "%s failed: %s" % (name, e)}

    def publish(self, d, topic, payload):
        from telelogger import ota

        assert topic == "ota"
        self.n += 1
        if self.drop_every and self.n % self.drop_every == 0:
            return  # lost on the way (the device's queue was full): ota_status lists it again
        if self.alter is not None and self.n == self.alter:
            payload = payload[:20] + bytes([payload[20] ^ 1]) + payload[21:]
        why = ota.chunk(self.t, payload)
        if why:
            self.refusals.append(why)


def test_ota_device_sends_what_the_device_needs_until_ready_then_commits(tmp_path):
    sys.path.insert(0, os.path.join(HERE, "mp"))
    import mp_ota_kit as K

    b = K.bundle(8, fl=K.files(8, n=20))  # more files than one ota_status lists (16)
    bundle = {"header": b["header"], "manifest": b["manifest"], "files": b["files"]}
    link = _DeviceLink(str(tmp_path) + "/", alter=3, drop_every=7)
    seen = []
    out = fleet.ota_device(link, {"id": K.DEV, "_key": K.KEY}, bundle, progress=lambda dev, done, total: seen.append(done))
    assert out["ok"], out
    assert out["reply"]["result"] == {"installed": 8, "slot": "a", "previous": 0, "reboot": True}
    assert link.refusals[0] == "chunk 0/2: bad mac (altered, another bundle or another key)", link.refusals
    assert all("out of order" in r for r in link.refusals[1:]), link.refusals  # after a loss: re-sent from there
    assert seen == sorted(seen) and seen[-1] == b["header"]["total"] + len(b["manifest"])
    assert out["sent"] > 21 and "installed version 8 in slot a" in fleet.describe("ota", out, 5)
    # the same bundle again: refused by the device with its reason, the tool says so
    out = fleet.ota_device(_DeviceLink(str(tmp_path) + "/"), {"id": K.DEV, "_key": K.KEY}, bundle)
    assert not out["ok"] and fleet.describe("ota", out, 5) == (
        "ota_begin failed: version 8 is on trial: update again once it is marked healthy"), out


def test_ota_device_fails_when_the_device_makes_no_progress(tmp_path):
    sys.path.insert(0, os.path.join(HERE, "mp"))
    import mp_ota_kit as K

    b = K.bundle(3)
    link = _DeviceLink(str(tmp_path) + "/", drop_every=1)  # nothing arrives
    out = fleet.ota_device(link, {"id": K.DEV, "_key": K.KEY}, b)
    assert not out["ok"] and out["error"].startswith("no progress in 3 rounds"), out


def test_ota_cli_usage_errors(tmp_path):
    (tmp_path / "d.csv").write_text("id,key\nX,x.key\n")
    for args, msg in ((["ota", str(tmp_path / "nope"), "--devices", str(tmp_path / "d.csv")], "neither a bundle"),
                      (["ota", str(tmp_path), "--devices", str(tmp_path / "d.csv")], "give --version V"),
                      (["ota", str(tmp_path), "--version", "3"], None)):
        p = subprocess.run([sys.executable, FLEET] + args, capture_output=True, text=True, timeout=60)
        assert p.returncode == 2, p
        assert (msg or "fleet: ") in p.stderr, p.stderr
