"""`fleet.py ota` end to end (issue 14 §1): mosquitto, the SIM7600 simulator on a pty and the
firmware under the 32-bit host MicroPython (scripts/run_host.py --root: the device's filesystem
root is a folder here, the build chosen at each start as main.py does, otaboot.select), restarted by
a small supervisor whenever the board resets (exit status 3), as the ESP32 boots again. The device
goes from the deployed tree (version 0) to version 7 and from 7 to 8 (one module changed: only it
and the manifest are sent, the rest copied from the installed build), the status reports each
version after the reboot and the build is marked healthy; a tampered chunk is refused with its
reason and changes nothing."""
import json
import os
import shutil
import subprocess
import sys
import threading
import time

import pytest

from peers.watch import Watcher

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "scripts"))
FLEET = os.path.join(ROOT, "scripts", "fleet.py")
# as test_sim.py / test_fleet_e2e.py: the entry path does not fit 96K yet. Measured on this test: 176K passes (it
# needed 320K before the names round: at 256K the new slot's boot died allocating the name pool's 9 KB table);
# at 128K it fails
HEAP = os.environ.get("SIM_TEST_HEAP", "192K")
DEV = "OTAE2E1"
KEY = "ota-e2e-key-" + "Pq7Lm2Xz9Rt4" * 3

pytestmark = pytest.mark.skipif(not (shutil.which("mosquitto") or os.path.exists("/usr/sbin/mosquitto")),
                                reason="mosquitto not installed")


class Supervisor(threading.Thread):
    """Starts the firmware, and again each time it exits with the board-reset status (3)."""

    def __init__(self, cmd, env, log):
        threading.Thread.__init__(self, daemon=True)
        self.cmd, self.env, self.log = cmd, env, log
        self.starts = 0
        self.proc = None
        self.stopping = False
        self.codes = []

    def run(self):
        while not self.stopping:
            self.starts += 1
            self.log.write("--- supervisor: start %d\n" % self.starts)
            self.log.flush()
            self.proc = subprocess.Popen(self.cmd, stdout=self.log, stderr=subprocess.STDOUT, cwd=ROOT, env=self.env)
            rc = self.proc.wait()
            self.codes.append(rc)
            if rc != 3 or self.starts > 8:
                return

    def stop(self):
        self.stopping = True
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.join(20)


def _tree(src, out):
    """`make build` of the source folder src (the .mpy names are the paths they are imported from,
    so the same module compiles to the same bytes whichever folder it came from)."""
    import build

    build.build(src=src, out=out)


def _fleet(work, port, *args, timeout=300):
    p = subprocess.run([sys.executable, FLEET, "--broker", "127.0.0.1:%d" % port, "--prefix", "fm", "--json",
                        "--timeout", "60"] + list(args) + ["--devices", str(work / "devices.csv")],
                       capture_output=True, text=True, timeout=timeout)
    lines = [json.loads(ln) for ln in p.stdout.splitlines() if ln.startswith("{")]
    return p, {d["device"]: d for d in lines}


def test_fleet_ota_moves_the_device_to_the_next_version(tmp_path):
    import ota_bundle as OB
    from sim import Broker, start_modem

    work = tmp_path
    dev_root = work / "device"  # the device's "/": the deployed tree (version 0), OTA slots under ota/
    _tree(os.path.join(ROOT, "firmware"), str(dev_root))
    src8 = work / "src8"
    shutil.copytree(os.path.join(ROOT, "firmware"), str(src8), ignore=shutil.ignore_patterns("*.md", "__pycache__"))
    with open(src8 / "telelogger" / "progress.py", "a") as f:
        f.write("\nOTA_E2E_BUILD = 8  # what makes build 8 differ from 7\n")
    tree8 = work / "tree8"
    _tree(str(src8), str(tree8))
    b7, b8 = work / "bundle7", work / "bundle8"
    OB.write(OB.make(str(dev_root), 7), str(b7))
    OB.write(OB.make(str(tree8), 8), str(b8))
    changed = [p for (p, d), (q, e) in zip(OB.load(str(b7))["files"], OB.load(str(b8))["files"]) if d != e]
    assert changed == ["telelogger/progress.mpy"], changed

    broker = sim = pty = keys = watch = sup = None
    log = open(work / "firmware.log", "w")
    try:
        broker = Broker(workdir=str(work)).start()
        watch = Watcher(broker.port, DEV, ("status",), client_id="ota-e2e-watch")
        assert watch.ready.wait(10)
        power = str(work / "power-key")
        sim, pty, keys = start_modem(broker.port, str(work), 0.05, power, modem_on=True)
        cfg = {"device_id": DEV, "topic_prefix": "fm", "encoding": "json",
               "broker": {"host": "broker.sim", "port": 1883, "tls": False},
               "gnss": {"source": "none"}, "obd": {"enabled": False}, "intervals": {"status_ms": 3000}}
        (work / "config.json").write_text(json.dumps(cfg))
        (work / "secrets.json").write_text(json.dumps({"hmac_key": KEY}))
        (work / "dev.key").write_text(KEY + "\n")
        (work / "devices.csv").write_text("id,key\n%s,dev.key\n" % DEV)
        env = dict(os.environ, FIRMWARE_PATH=str(dev_root))  # the deployed tree is the device root's
        cmd = [sys.executable, os.path.join(ROOT, "scripts", "run_host.py"), "--modem", pty.path,
               "--config", str(work / "config.json"), "--secrets", str(work / "secrets.json"),
               "--store", str(work / "queue"), "--heap", HEAP, "--status-ms", "5000", "--power-key", power,
               "--root", str(dev_root)]
        sup = Supervisor(cmd, env, log)
        sup.start()

        def fwlog():
            return (work / "firmware.log").read_text()[-4000:]

        st = watch.wait("status", lambda d: d.get("ota") is not None, 180, "with an ota field")
        assert st["ota"] == {"ver": 0, "slot": "-", "trial": 0, "failed": None}, st

        # a tampered chunk: refused with its reason (ota_status says it), nothing staged from it
        p, out = _fleet(work, broker.port, "send", "ota_begin", json.dumps(OB.begin_args(OB.load(str(b7)), KEY, DEV)))
        assert p.returncode == 0 and out[DEV]["reply"]["result"]["state"] == "receiving", (p.stdout, p.stderr, fwlog())
        import paho.mqtt.client as mqtt

        bad = bytearray(next(OB.chunks(OB.load(str(b7)), KEY, DEV))[2])
        bad[40] ^= 0x20
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="ota-e2e-tamper")
        c.connect("127.0.0.1", broker.port, 30)
        c.loop_start()
        c.publish("fm/%s/ota" % DEV, bytes(bad), qos=1).wait_for_publish(10)
        c.loop_stop()
        c.disconnect()
        time.sleep(3)
        p, out = _fleet(work, broker.port, "send", "ota_status")
        r = out[DEV]["reply"]["result"]
        assert r["error"] == "chunk 0/0: bad mac (altered, another bundle or another key)" and r["refused"] == 1, r
        assert r["need"] == [[0, 0]] and r["bytes"] == 0, r  # nothing written

        t0 = time.monotonic()
        p, out = _fleet(work, broker.port, "ota", str(b7), "--wait", "180")
        assert p.returncode == 0, (p.stdout, p.stderr, fwlog())
        o = out[DEV]
        assert o["ok"] and o["reply"]["result"] == {"installed": 7, "slot": "a", "previous": 0, "reboot": True}, o
        t7 = time.monotonic() - t0
        nman = OB.n_chunks(OB.load(str(b7)), 0)
        assert o["reused"] == len(OB.load(str(b7))["files"]) and o["sent"] == nman, o  # all copied from the tree
        assert sup.starts == 2 and sup.codes == [3], (sup.starts, sup.codes)
        st = watch.wait("status", lambda d: (d.get("ota") or {}).get("ver") == 7 and d["ota"]["trial"] == 0, 120, "with 7, healthy")
        assert st["ota"]["slot"] == "a" and st["ota"]["failed"] is None, st

        t0 = time.monotonic()
        p, out = _fleet(work, broker.port, "ota", str(b8), "--wait", "180")
        assert p.returncode == 0, (p.stdout, p.stderr, fwlog())
        o = out[DEV]
        assert o["reply"]["result"] == {"installed": 8, "slot": "b", "previous": 7, "reboot": True}, o
        t8 = time.monotonic() - t0
        bb8 = OB.load(str(b8))
        i = [p for p, _ in bb8["files"]].index("telelogger/progress.mpy") + 1
        assert o["reused"] == len(bb8["files"]) - 1 and o["sent"] == OB.n_chunks(bb8, 0) + OB.n_chunks(bb8, i), o
        st = watch.wait("status", lambda d: (d.get("ota") or {}).get("ver") == 8 and d["ota"]["trial"] == 0, 120, "with 8, healthy")
        assert st["ota"]["slot"] == "b" and sup.starts == 3, (st, sup.starts)
        with open(dev_root / "ota" / "ptr") as f:
            assert f.read() == "b 8 a 7 0\n"
        print("ota e2e: 0->7 %.1f s, 7->8 %.1f s (heap %s)" % (t7, t8, HEAP))
    finally:
        for x in (sup, watch, keys, pty, sim, broker):
            if x is not None:
                for m in ("stop", "close"):
                    if hasattr(x, m):
                        try:
                            getattr(x, m)()
                        except Exception:
                            pass
                        break
        log.close()
