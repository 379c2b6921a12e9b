"""scripts/fleet.py end to end (issue 14 §2-§4): mosquitto, the SIM7600 simulator on a pty, the
elm327-emulator's car with stored and pending trouble codes, and the firmware under the 32-bit host
MicroPython (scripts/run_host.py, .mpy from the filesystem). The fleet tool signs with the scheme of
FORMAT.md, publishes through the broker and reads the signed replies: a bad config value changes
nothing and names the key, good ones take effect (at once, or at the next restart, as the reply
says), dtc_read returns the emulator's codes, the VIN and the dtc event reach the broker, dtc_clear
needs confirm, and a device that does not answer makes the exit status non-zero."""
import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from peers.watch import Watcher

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
FLEET = os.path.join(ROOT, "scripts", "fleet.py")
# as test_sim.py: the entry path does not fit 96K yet (issue 9); a config_set validates on the device (the
# validator is imported for it): passes at 176K, at 144K the validation runs out of memory
HEAP = os.environ.get("SIM_TEST_HEAP", "192K")
DEV = "FLEET01"
KEY = "fleet-e2e-key-" + "Hd7Kq2Mz9Xw4" * 3
STORED = ["0133", "4123"]  # P0133, C0123
PENDING = ["0300"]  # P0300
VINS = ("WP0ZZZ99ZTS390000", "MAT403096BNL00000")  # the emulator's car answers one of these

pytestmark = pytest.mark.skipif(not (shutil.which("mosquitto") or os.path.exists("/usr/sbin/mosquitto")),
                                reason="mosquitto not installed")


def _elm_with_codes(workdir):
    from peers.elm_peer import ElmPeer

    peer = ElmPeer("car", dtcs=STORED).start()
    marker = os.path.join(peer._dir, "batch.txt")
    peer.proc.stdin.write(("import elm.obd_message as _m; _m.DTC_PENDING[:] = %r\necho PENDING_SET\n" % PENDING).encode())
    peer.proc.stdin.flush()
    end = time.monotonic() + 20
    while "PENDING_SET" not in open(marker).read():
        assert time.monotonic() < end, "elm327-emulator did not take the pending DTCs"
        time.sleep(0.05)
    return peer


def _fleet(devices, *args, timeout=60):
    p = subprocess.run([sys.executable, FLEET, "--devices", str(devices), "--broker", "127.0.0.1:%d" % _fleet.port,
                        "--prefix", "fm", "--json"] + list(args), capture_output=True, text=True, timeout=timeout + 60)
    lines = [json.loads(ln) for ln in p.stdout.splitlines() if ln.startswith("{")]
    return p, {d["device"]: d for d in lines}


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    from sim import Broker, start_modem

    work = tmp_path_factory.mktemp("fleet")
    broker = sim = pty = keys = elm = fw = watch = None
    try:
        broker = Broker(workdir=str(work), persistence=True).start()
        _fleet.port = broker.port
        watch = Watcher(broker.port, DEV, ("status", "event"), client_id="fleet-e2e-watch")
        assert watch.ready.wait(10)
        power = str(work / "power-key")
        sim, pty, keys = start_modem(broker.port, str(work), 0.05, power, modem_on=True)
        elm = _elm_with_codes(work)
        cfg = {"device_id": DEV, "topic_prefix": "fm", "encoding": "json",
               "broker": {"host": "broker.sim", "port": 1883, "tls": False},
               "gnss": {"source": "none"}, "obd": {"pids": {"0C": 2000, "0D": 2000}, "dtc_interval_s": 20},
               "intervals": {"status_ms": 20000, "battery_ms": 5000}}
        (work / "config.json").write_text(json.dumps(cfg))
        (work / "secrets.json").write_text(json.dumps({"hmac_key": KEY}))
        (work / "FLEET01.key").write_text(KEY + "\n")
        log = open(work / "firmware.log", "w")
        fw = subprocess.Popen([sys.executable, os.path.join(ROOT, "scripts", "run_host.py"), "--modem", pty.path,
                               "--obd", elm.path, "--config", str(work / "config.json"),
                               "--secrets", str(work / "secrets.json"), "--store", str(work / "queue"),
                               "--heap", HEAP, "--status-ms", "5000", "--power-key", power],
                              stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        watch.wait("status", lambda d: True, 120)  # connected and publishing
        yield {"work": work, "watch": watch, "fw": fw, "elm": elm}
    finally:
        if fw is not None:
            fw.terminate()
            try:
                fw.wait(10)
            except subprocess.TimeoutExpired:
                fw.kill()
        for x in (watch, elm, keys, pty, sim, broker):
            if x is not None:
                for m in ("stop", "close"):
                    if hasattr(x, m):
                        try:
                            getattr(x, m)()
                        except Exception:
                            pass
                        break


def _devices(rig, extra=()):
    p = rig["work"] / "devices.csv"
    p.write_text("id,key\n%s,FLEET01.key\n" % DEV + "".join("%s,FLEET01.key\n" % x for x in extra))
    return p


def _log(rig):
    return (rig["work"] / "firmware.log").read_text()[-3000:]


def test_bad_config_value_changes_nothing_and_names_the_key(rig):
    before = (rig["work"] / "config.json").read_text()
    p, out = _fleet(_devices(rig), "config", "set", "intervals.status_ms=5")
    assert p.returncode == 1, (p.stdout, p.stderr, _log(rig))
    r = out[DEV]["reply"]
    assert r["ok"] is False and r["key"] == "intervals.status_ms" and "1000" in r["expected"], r
    assert (rig["work"] / "config.json").read_text() == before
    p, out = _fleet(_devices(rig), "config", "set", "encoding=xml")
    assert p.returncode == 1 and out[DEV]["reply"]["key"] == "encoding", p.stdout
    assert (rig["work"] / "config.json").read_text() == before


def test_config_set_takes_effect_and_says_what_waits_for_a_restart(rig):
    watch = rig["watch"]
    p, out = _fleet(_devices(rig), "config", "set", "intervals.status_ms=2000", "broker.keepalive=120")
    assert p.returncode == 0, (p.stdout, p.stderr, _log(rig))
    res = out[DEV]["reply"]["result"]
    assert res["now"] == {"intervals.status_ms": 2000} and res["restart"] == {"broker.keepalive": 120}, res
    assert "applies at next restart" in res["note"]
    f = json.loads((rig["work"] / "config.json").read_text())
    assert f["intervals"]["status_ms"] == 2000 and f["broker"]["keepalive"] == 120, f
    t0 = time.monotonic()
    # the status task finishes its running 20 s sleep, then publishes every 2 s, saying what waits
    watch.wait("status", lambda d: (d.get("cfg") or {}).get("restart") == {"broker.keepalive": 120}, 60)
    t1 = max(t for t, d in watch.of("status", t0) if (d.get("cfg") or {}).get("restart"))
    time.sleep(7)
    after = watch.of("status", t1 + 0.1)
    assert len(after) >= 2, (t1, [t for t, _d in watch.of("status", t0)])
    p, out = _fleet(_devices(rig), "config", "get", "broker.keepalive")
    g = out[DEV]["reply"]["result"]
    assert p.returncode == 0 and g["value"] == 60 and g["restart"] == {"broker.keepalive": 120}, g
    p, out = _fleet(_devices(rig), "send", "set_interval", '{"target": "intervals.battery_ms", "ms": 1000}')
    assert p.returncode == 0 and out[DEV]["reply"]["result"] == {"target": "intervals.battery_ms", "ms": 1000}


def test_dtc_read_returns_the_emulators_codes_and_the_vin_reaches_the_broker(rig):
    watch = rig["watch"]
    p, out = _fleet(_devices(rig), "dtc", "read")
    assert p.returncode == 0, (p.stdout, p.stderr, _log(rig))
    res = out[DEV]["reply"]["result"]
    assert res["stored"] == ["P0133", "C0123"] and res["pending"] == ["P0300"], res
    assert res["vin"] in VINS, res
    ev = watch.wait("event", lambda d: d.get("event") == "dtc", 60)
    assert ev["stored"] == ["P0133", "C0123"] and ev["pending"] == ["P0300"] and ev["id"] == DEV, ev
    st = watch.wait("status", lambda d: d.get("vin") is not None, 60)
    assert st["vin"] in VINS


def test_dtc_clear_needs_confirm(rig):
    p, out = _fleet(_devices(rig), "dtc", "clear")
    assert p.returncode == 2 and "--confirm" in p.stderr and out == {}, p  # refused before anything is sent
    p, out = _fleet(_devices(rig), "send", "dtc_clear", "{}")
    r = out[DEV]["reply"]
    assert p.returncode == 1 and r["ok"] is False and '"confirm": true' in r["error"], r
    p, out = _fleet(_devices(rig), "dtc", "clear", "--confirm")
    res = out[DEV]["reply"]["result"]
    assert p.returncode == 0 and res["cleared"] is True and res["stored"] == [] and res["pending"] == [], res
    rig["watch"].wait("event", lambda d: d.get("stored") == [] and d.get("pending") == [], 60)


def test_a_device_that_does_not_answer_fails_the_run(rig):
    devs = _devices(rig, extra=("OFFLINE9",))
    p = subprocess.run([sys.executable, FLEET, "--devices", str(devs), "--broker", "127.0.0.1:%d" % _fleet.port,
                        "--prefix", "fm", "--timeout", "8", "send", "ping"], capture_output=True, text=True, timeout=90)
    assert p.returncode == 1, (p.stdout, p.stderr)
    lines = p.stdout.splitlines()
    assert any(ln.startswith("%s ok " % DEV) for ln in lines), p.stdout
    assert any(ln.startswith("OFFLINE9 TIMEOUT no reply within 8 s") for ln in lines), p.stdout
    assert "1 of 2 devices ok" in p.stdout  # the summary table
