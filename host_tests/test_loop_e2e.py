"""The telelogger loop with the real pieces, in one CPython process: AT engine + CellularPublisher
over the SIM7600 simulator (in-memory broker), Obd over the elm327-emulator's pty, UartGnss fed
with a replayed drive, the flash store, the encoder and HMAC commands."""
import asyncio
import json
import os

import pytest

from at.engine import ATEngine
from core.stream import SerialPath
from fakestream import BufferStream
from gnss.sources import UartGnss
from net.cellular import from_config
from obdii.elm import ElmLink
from obdii.obd import Obd
from peers.elm_peer import ElmPeer
from peers.gnss_replay import Drive
from peers.sim7600 import Sim7600, SimStream
from peers.sim7600_mqtt import LocalBroker
import cmdsigner
from telelogger import config, encode, keys, sampler
from telelogger.assembly import flat_config
from telelogger.loop import Telelogger
from telelogger.store import Store

KEY = "e2e-Key-9fQ2vXz7LmN4rTb8WcY3hJd6"


def test_sample_keys_agree_with_keys_table():
    names = {
        "_K_TIME": "gps_time", "_K_DATE": "gps_date", "_K_LAT": "lat", "_K_LNG": "lng", "_K_ALT": "alt",
        "_K_SPEED": "gps_speed", "_K_HEADING": "heading", "_K_SATS": "sats", "_K_HDOP": "hdop",
        "K_BATTERY": "battery", "K_SIGNAL": "signal",
    }  # _K_*: const() names MicroPython keeps no global for (CPython does)
    for const, name in names.items():
        assert getattr(sampler, const) == keys.key_of(name), const
    assert sampler._K_OBD == keys.OBD_BASE


def make_cfg():
    return config.validate({
        "device_id": "E2E01", "encoding": "compact", "topic_prefix": "fm",
        "broker": {"host": "broker.test", "port": 1883, "tls": False},
        "obd": {"enabled": True, "pids": {"0C": 500, "0D": 500, "05": 2000}},
        "batch": {"max_records": 5, "max_age_ms": 1000},
        "intervals": {"battery_ms": 1000, "signal_ms": 2000, "status_ms": 3000},
        "secrets": {"hmac_key": KEY},
    })


def _data(broker, topic):
    out = []
    for t, p, _q, _r in list(broker.messages):
        if t == topic.encode():
            out.append(p)
    return out


async def _until(cond, timeout_s):
    for _ in range(int(timeout_s * 20)):
        if cond():
            return True
        await asyncio.sleep(0.05)
    return cond()


def test_loop_end_to_end(tmp_path):
    broker = LocalBroker()
    sim = Sim7600(ready=True, broker=broker, time_scale=0.05)
    drive = Drive(start_utc=1764000000.0)
    cfg = make_cfg()
    with ElmPeer("car") as peer:

        async def main():
            at = ATEngine(SimStream(sim))
            at.start()
            pub = from_config(at, flat_config(cfg))
            obd = Obd(ElmLink(SerialPath(peer.path)))
            nmea = BufferStream()
            gnss = UartGnss(nmea)
            store = Store(str(tmp_path / "q"), 65536, 4096)
            t = Telelogger(cfg, pub, store, obd=obd, gnss=gnss, modem=None, boot=1)

            async def feed():  # one simulated second of NMEA every 100 ms
                s = 0
                while True:
                    for line in drive.sentences_at(s):
                        nmea.feed(line)
                    s += 1
                    await asyncio.sleep(0.1)

            ft = asyncio.create_task(feed())
            t.start()
            try:
                assert await _until(lambda: t.counters["sent"] >= 12, 60), t.counters
                ts = t.utc_ms() // 1000  # the device's clock (from the replayed drive's GNSS)
                ping = cmdsigner.sign(KEY, {"cmd": "ping", "args": {}, "ts": ts, "n": 1, "nonce": "a1"}, "E2E01")
                forged = json.dumps({"cmd": "reboot", "args": {}, "ts": ts, "n": 2, "nonce": "a2",
                                     "mac": "00" * 32}).encode()
                setiv = cmdsigner.sign(KEY, {"cmd": "set_interval", "args": {"target": "obd.pids.05", "ms": 500},
                                             "ts": ts, "n": 3, "nonce": "a3"}, "E2E01")
                for p in (ping, forged, setiv):
                    broker.deliver("fm/E2E01/cmd", p, qos=1)
                assert await _until(lambda: len(_data(broker, "fm/E2E01/reply")) >= 3, 30)
            finally:
                t.stop()
                ft.cancel()
                gnss.stop()
                at.stop()
            return t

        t = asyncio.run(main())
    sim.close()
    batches = [encode.decode_batch(p) for p in _data(broker, "fm/E2E01/data")]
    recs = [r for b in batches for r in b["recs"]]
    seqs = [r["seq"] for r in recs]
    assert seqs == list(range(1, len(seqs) + 1))  # oldest first, each once
    assert all(b["dev"] == "E2E01" for b in batches)
    assert any("rpm" in r for r in recs) and any("lat" in r for r in recs)
    assert any(r["ts"] and r["ts"] >= 1764000000000 for r in recs)  # UTC from the GNSS fix
    replies = [cmdsigner.verify_reply(KEY, p, "E2E01") for p in _data(broker, "fm/E2E01/reply")]
    assert replies[0]["ok"] and replies[0]["result"]["pong"] is True
    assert not replies[1]["ok"] and not t.reboot_req  # forged: refused, no action
    assert replies[2]["ok"] and [p.interval_ms for p in t.pids if p.pid == 5] == [500]
    assert t.counters["obd_reads"] > 0 and t.counters["gnss_fixes"] > 0


@pytest.mark.skipif(not os.path.exists("/dev/ptmx"), reason="needs ptys")
def test_keys_of_samples_decode_with_names():
    rec = encode.encode_record(1000, True, [(sampler._K_LAT, -37.8), (keys.OBD_BASE | 0x0C, 1800)])
    d = encode.decode_batch(encode.encode_batch("X", [(1, rec)], "json"))
    assert d["recs"][0]["lat"] == -37.8 and d["recs"][0]["rpm"] == 1800


def test_telelogger_modules_have_no_import_circle():
    """Every import counts, also those inside functions (a lazy import is still an edge)."""
    import ast

    here = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "firmware", "telelogger")
    names = [f[:-3] for f in os.listdir(here) if f.endswith(".py") and f != "__init__.py"]
    edges = {}
    for n in names:
        with open(os.path.join(here, n + ".py")) as f:
            tree = ast.parse(f.read())
        out = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "telelogger":
                out.update(a.name for a in node.names if a.name in names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("telelogger."):
                out.add(node.module.split(".", 1)[1])
            elif isinstance(node, ast.Import):
                out.update(a.name.split(".", 1)[1] for a in node.names if a.name.startswith("telelogger."))
        out.discard(n)
        edges[n] = out

    def path_back(start):
        seen, stack = set(), [(start, [start])]
        while stack:
            node, path = stack.pop()
            for m in edges.get(node, ()):
                if m == start:
                    return path + [m]
                if m not in seen:
                    seen.add(m)
                    stack.append((m, path + [m]))
        return None

    circles = [p for p in (path_back(n) for n in sorted(names)) if p]
    assert not circles, circles
    assert "loop" in edges and "tasks" in edges["loop"]  # the walk saw the imports
    # the tools' decoder is reached only through encode's compatibility names, never by device code
    assert [n for n in names if "decode" in edges[n]] == ["encode"]
