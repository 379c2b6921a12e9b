"""Store-and-forward across hard resets: the telelogger under the host MicroPython is killed with
SIGKILL at random points while it samples, appends and sends; each restart continues from the
flash queue. Every record must reach the broker at least once; re-sent ones (published, killed
before the ack was persisted) are duplicates recognisable by their sequence number."""
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))

from peers.elm_peer import ElmPeer  # noqa: E402
from peers.sim7600 import Sim7600, SimPty  # noqa: E402

KILLS = 4
# The budget is 96K (run_host's default, issue 9); until the RAM work is merged the telelogger does not fit
# there, so this test says what it uses: KILL_TEST_HEAP=96K checks the budget.
# 256K, not the entry path's ~136K: the margin keeps collections (and the reconnects after each kill) short
HEAP = os.environ.get("KILL_TEST_HEAP", "256K")


class Collector:
    def __init__(self, port):
        import paho.mqtt.client as mqtt

        from telelogger import encode

        self.encode = encode
        self.seqs = []
        self.lock = threading.Lock()
        self.ready = threading.Event()
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="kill-test-%d" % os.getpid())
        c.on_connect = lambda cl, *a: (cl.subscribe("kt/+/data", 1), self.ready.set())
        c.on_message = self._msg
        c.connect("127.0.0.1", port, 30)
        c.loop_start()
        self.c = c

    def _msg(self, cl, ud, msg):
        d = self.encode.decode_batch(msg.payload)
        with self.lock:
            self.seqs.extend(r["seq"] for r in d["recs"])

    def stop(self):
        self.c.loop_stop()
        self.c.disconnect()


def _run(cfg, store, modem, obd, duration, drain=0):
    cmd = [sys.executable, os.path.join(ROOT, "scripts", "run_host.py"), "--modem", modem, "--obd", obd,
           "--config", cfg, "--store", store, "--duration", str(duration), "--status-ms", "500", "--heap", HEAP]
    if drain:
        cmd += ["--drain", str(drain)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)


def _read(p, lines, writing):
    """The firmware's output line by line; `writing` is set at the first progress line counting a record
    written by this run (last_seq alone is restored from the flash queue at a restart)."""
    for line in p.stdout:
        lines.append(line)
        if not writing.is_set() and '"progress"' in line:
            m = _progress(line)
            if m and m.get("records"):
                writing.set()


def _progress(out):
    last = None
    for line in out.splitlines():
        try:
            m = json.loads(line)
        except ValueError:
            continue
        if "progress" in m:
            last = m["progress"]
    return last


@pytest.mark.micropython
def test_sigkill_at_random_points_loses_nothing(tmp_path):
    from peers.broker import Broker

    seed = int(os.environ.get("KILL_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({
        "device_id": "KILL01", "topic_prefix": "kt", "encoding": "compact",
        "broker": {"host": "broker.test", "port": 1883, "tls": False},
        "obd": {"enabled": True, "pids": {"0C": 250, "0D": 250, "05": 1000}},
        "gnss": {"source": "none"},
        "batch": {"max_records": 3, "max_age_ms": 300},
        "queue": {"max_bytes": 65536, "segment_bytes": 2048, "sync_ms": 1000},  # kills land inside windows
    }))
    store = str(tmp_path / "queue")
    broker = Broker(workdir=str(tmp_path)).start()  # mosquitto, or amqtt when it is missing
    col = Collector(broker.port)
    assert col.ready.wait(10)
    sim = Sim7600(ready=True, broker_map={"*": ("127.0.0.1", broker.port)}, time_scale=0.05)
    pty = SimPty(sim)
    kills = []
    from mphost import compile_tree  # run_host's firmware cache: compiled before the kill timers start

    compile_tree(os.path.join(ROOT, "firmware"), os.path.join(ROOT, "build", "fw-dev"), release=True, device_names=True)
    try:
        with ElmPeer("car") as peer:
            for _ in range(KILLS):
                p = _run(str(cfg), store, pty.path, peer.path, 60)
                t0 = time.monotonic()
                lines, writing = [], threading.Event()
                reader = threading.Thread(target=_read, args=(p, lines, writing), daemon=True)
                reader.start()
                # a random point once records are being written: a fixed delay from the start lands in the
                # boot on a loaded machine (a fresh-clone CI run killed four times before the first record)
                assert writing.wait(60), "no record within 60 s (seed %d):\n%s" % (seed, "".join(lines)[-3000:])
                time.sleep(rng.uniform(0.0, 3.0))
                assert p.poll() is None, "firmware exited early (seed %d):\n%s" % (seed, "".join(lines)[-3000:])
                p.send_signal(signal.SIGKILL)
                p.wait(10)
                reader.join(10)
                prog = _progress("".join(lines)) or {}
                kills.append((round(time.monotonic() - t0, 2), prog.get("records"), prog.get("last_seq"), prog.get("acked_seq")))
            p = _run(str(cfg), store, pty.path, peer.path, 4, drain=30)
            out = p.communicate(timeout=120)[0]
            assert p.returncode == 0, "seed %d:\n%s" % (seed, out[-4000:])
        final = _progress(out)
        last = final["last_seq"]
        assert final["queued"] == 0, final
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with col.lock:
                if set(range(1, last + 1)) <= set(col.seqs):
                    break
            time.sleep(0.1)
        with col.lock:
            got = list(col.seqs)
    finally:
        col.stop()
        pty.close()
        sim.close()
        broker.stop()
    uniq = set(got)
    missing = sorted(set(range(1, last + 1)) - uniq)
    dups = len(got) - len(uniq)
    print("seed %d kills (at s, records, last_seq, acked_seq) %s: %d records, %d received, %d duplicates" % (
        seed, kills, last, len(got), dups))
    assert not missing, "seed %d: records never delivered: %s (kills %s)" % (seed, missing, kills)
    assert max(uniq) == last
    # duplicates only come from a batch re-sent after a kill: never more than a batch per kill
    assert dups <= KILLS * 3, (dups, kills)
