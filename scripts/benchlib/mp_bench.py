# Runs under the host MicroPython (and CPython) for scripts/bench.py, importing the firmware from
# build/firmware. Prints one JSON line {"result": {...}} at the end.
#
#   micropython mp_bench.py pipeline <samples> <store_dir> [baud]
#       The telelogger's data path driven sample by sample: sample -> encode_record -> Store.append
#       -> (every batch) encode_batch -> CellularPublisher.publish -> AT+CMQTTTOPIC/PAYLOAD/PUB to an
#       in-process modem that answers instantly (no broker latency). baud > 0 paces the bytes
#       both ways like a UART at that rate (10 bits per byte); 0 = no pacing (CPU cost only).
#   micropython mp_bench.py e2e <modem_path> <samples> <store_dir> <host> <port>
#       The whole telelogger (Telelogger tasks, bring-up, CMQTT) on a serial path (the SIM7600
#       simulator's pty, bridged to a real broker), OBD from a fast in-process vehicle, until
#       <samples> sample values are stored and every record is published.
import asyncio
import gc
import json
import sys

try:
    import micropython
except ImportError:
    micropython = None

try:
    from time import ticks_diff, ticks_ms, ticks_us
except ImportError:
    import time as _t

    def ticks_us():
        return int(_t.perf_counter() * 1000000)

    def ticks_ms():
        return int(_t.monotonic() * 1000)

    def ticks_diff(a, b):
        return a - b


DEVICE = "BENCH01"


def mem():
    gc.collect()
    d = {"mem_alloc": gc.mem_alloc() if hasattr(gc, "mem_alloc") else -1,
         "mem_free": gc.mem_free() if hasattr(gc, "mem_free") else -1}
    if micropython is not None and hasattr(micropython, "mem_peak"):
        d["mem_peak"] = micropython.mem_peak()
    return d


def _mount_romfs():
    """BENCH_ROMFS=<image>: import the firmware from a ROMFS image (vfs.VfsRom), where bytecode runs
    in place as from a device's ROMFS partition or frozen modules. The image bytes are read into the
    heap here, before BASE0, so what the firmware costs on top is measured without them."""
    try:
        import os

        path = os.getenv("BENCH_ROMFS")
    except (ImportError, AttributeError):
        path = None
    if not path:
        return 0
    import vfs

    with open(path, "rb") as f:
        data = f.read()
    vfs.mount(vfs.VfsRom(data), "/rom")
    sys.path.insert(0, "/rom")
    globals()["_ROM"] = data  # keep it alive
    return len(data)


ROMFS_BYTES = _mount_romfs()
BASE0 = mem()  # interpreter + asyncio + this driver (+ a ROMFS image), before any firmware module


def cfg(batch=20, pid_ms=100):
    return {
        "device_id": DEVICE, "encoding": "compact", "topic_prefix": "freematics",
        "broker": {"host": "broker.sim", "port": 1883, "tls": False, "keepalive": 60},
        "cellular": {"apn": "internet"},
        "obd": {"enabled": True, "pids": {"0C": pid_ms, "0D": pid_ms, "11": pid_ms, "04": pid_ms}},
        "gnss": {"source": "none"},
        "batch": {"max_records": batch, "max_age_ms": 500},
        "intervals": {"battery_ms": 1000, "signal_ms": 600000, "status_ms": 600000, "record_ms": pid_ms},
    }


class Vehicle:
    """Deterministic drive: rpm, speed, throttle, load; GNSS every 5th record."""

    def __init__(self):
        self.i = 0

    def values(self):
        i = self.i
        self.i += 1
        rpm = 800 + (i * 37) % 2600
        out = [(0x10C, rpm), (0x10D, (i // 3) % 110), (0x111, ((i * 7) % 1000) / 10.0), (0x104, (i * 13) % 100)]
        if i % 5 == 0:
            out += [(0x0A, -37.81 + i * 0.00001), (0x0B, 144.96 + i * 0.00001), (0x0C, 31.5), (0x0F, 9)]
        return out


class FastObd:
    """What telelogger.sampler wants from obdii.obd.Obd, answering at once."""

    def __init__(self):
        self.n = 0

    async def init(self):
        return 4

    def is_supported(self, pid):
        return True

    async def read_pid(self, pid):
        self.n += 1
        if pid == 0x0C:
            return 800 + (self.n * 37) % 2600
        if pid == 0x0D:
            return (self.n // 3) % 110
        if pid == 0x11:
            return ((self.n * 7) % 1000) / 10.0
        return (self.n * 13) % 100

    async def battery_voltage(self):
        return 13.8


# ------------------------------------------------------------------ instant modem
class Responder:
    """A SIM7600 that answers CMQTT commands at once, in the module's byte formats (echo off)."""

    def __init__(self):
        self.acc = bytearray()
        self.want = 0
        self.after = b""
        self.pubs = 0

    def handle(self, data):
        out = bytearray()
        for c in data:
            if self.want:
                self.want -= 1
                if not self.want:
                    out += self.after
                continue
            if c == 13:
                out += self.line(bytes(self.acc))
                self.acc = bytearray()
            elif c != 10:
                self.acc.append(c)
        return bytes(out)

    def _prompt(self, n, after):
        self.want = n
        self.after = after
        return b"\r\n>"

    def line(self, ln):
        if not ln.startswith(b"AT+CMQTT"):
            return b"\r\nOK\r\n"
        op = ln[3:].split(b"=")[0].split(b"?")[0]
        args = ln.split(b"=")[1].split(b",") if b"=" in ln else []
        if op in (b"CMQTTTOPIC", b"CMQTTPAYLOAD", b"CMQTTSUBTOPIC"):
            return self._prompt(int(args[1]), b"\r\nOK\r\n")
        if op == b"CMQTTSUB" and len(args) > 1:
            return self._prompt(int(args[1]), b"\r\nOK\r\n\r\n+CMQTTSUB: 0,0\r\n")
        if op == b"CMQTTPUB":
            self.pubs += 1
            return b"\r\nOK\r\n\r\n+CMQTTPUB: 0,0\r\n"
        if op in (b"CMQTTSTART", b"CMQTTSTOP"):
            return b"\r\nOK\r\n\r\n+%s: 0\r\n" % op
        if op in (b"CMQTTCONNECT", b"CMQTTDISC", b"CMQTTSUB"):
            return b"\r\nOK\r\n\r\n+%s: 0,0\r\n" % op
        return b"\r\nOK\r\n"


class InstantStream:
    """core.stream interface around the Responder. baud > 0: bytes take 10/baud s each way
    (UART pacing); the modem answers the moment a command's last byte has arrived."""

    def __init__(self, baud=0):
        self.r = Responder()
        self.us_per_byte = 10000000 // baud if baud else 0
        self.tx_bytes = 0
        self.rx_bytes = 0
        self.rx = bytearray()
        self.pos = 0
        self.tx_free = ticks_us()
        self.rx_free = self.tx_free  # when the next queued reply byte is on our side
        self.pending = []  # (due_us, bytes) written but not yet arrived at the modem

    def write(self, data):
        n = len(data)
        self.tx_bytes += n
        if not self.us_per_byte:
            self._reply(self.r.handle(bytes(data)), 0)
            return n
        now = ticks_us()
        start = self.tx_free if ticks_diff(self.tx_free, now) > 0 else now
        due = start + n * self.us_per_byte
        self.tx_free = due
        self.pending.append((due, bytes(data)))
        return n

    def _reply(self, out, at_us):
        if not out:
            return
        if self.pos == len(self.rx):
            self.rx = bytearray()
            self.pos = 0
            if self.us_per_byte and ticks_diff(at_us, self.rx_free) > 0:
                self.rx_free = at_us
        self.rx += out

    def readinto(self, buf):
        if self.us_per_byte:
            now = ticks_us()
            while self.pending and ticks_diff(now, self.pending[0][0]) >= 0:
                due, data = self.pending.pop(0)
                self._reply(self.r.handle(data), due)
            avail = len(self.rx) - self.pos
            if avail and ticks_diff(now, self.rx_free) >= 0:
                k = ticks_diff(now, self.rx_free) // self.us_per_byte + 1
                avail = min(avail, k)
            elif avail:
                avail = 0
        else:
            avail = len(self.rx) - self.pos
        n = min(len(buf), avail)
        if n:
            buf[:n] = memoryview(self.rx)[self.pos : self.pos + n]
            self.pos += n
            self.rx_bytes += n
            if self.us_per_byte:
                self.rx_free += n * self.us_per_byte
        return n

    def close(self):
        pass


def pct(sorted_vals, p):
    if not sorted_vals:
        return None
    k = int(round((len(sorted_vals) - 1) * p))
    return sorted_vals[k]


async def pipeline(n_samples, store_dir, baud):
    from at.engine import ATEngine
    from core.compat import Clock
    from net.cellular import CellularPublisher
    from telelogger.loop import Telelogger
    from telelogger.store import Store

    base = BASE0
    loaded = mem()
    clock = Clock()
    s = InstantStream(baud)
    at = ATEngine(s, clock)
    at.start()
    pub = CellularPublisher(at, clock, client_id=DEVICE, host="broker.sim", port=1883, bring_up=False)
    store = Store(store_dir, 262144, 16384)
    t = Telelogger(cfg(), pub, store, clock=clock, device_id=DEVICE)
    await t.connect()
    veh = Vehicle()
    per_sample = []
    pub_us = []
    pub_tx = []
    pub_rx = []
    samples = 0
    t_all = ticks_us()
    while samples < n_samples:
        t0 = ticks_us()
        vals = veh.values()
        for k, v in vals:
            t.sample(k, v)
        t.build_record()
        if store.pending() >= t.batch_max:
            tx, rx = s.tx_bytes, s.rx_bytes
            p0 = ticks_us()
            await t.send_batch()
            pub_us.append(ticks_diff(ticks_us(), p0))
            pub_tx.append(s.tx_bytes - tx)
            pub_rx.append(s.rx_bytes - rx)
        dt = ticks_diff(ticks_us(), t0)
        samples += len(vals)
        per_sample.append(dt / len(vals))
    while store.pending():
        await t.send_batch()
    total_us = ticks_diff(ticks_us(), t_all)
    at.stop()
    per_sample.sort()
    pub_us.sort()
    res = {"samples": samples, "records": t.counters["records"], "batches": t.counters["batches"],
           "median_us": pct(per_sample, 0.5), "p99_us": pct(per_sample, 0.99), "mean_us": total_us / samples,
           "total_us": total_us, "pub_median_us": pct(pub_us, 0.5), "pub_p99_us": pct(pub_us, 0.99),
           "pub_mean_us": sum(pub_us) / max(1, len(pub_us)), "pub_tx_bytes": sum(pub_tx) / max(1, len(pub_tx)),
           "pub_rx_bytes": sum(pub_rx) / max(1, len(pub_rx)), "pubs": s.r.pubs, "baud": baud,
           "samples_per_batch": samples / max(1, t.counters["batches"]), "base": base, "loaded": loaded}
    res.update(mem())
    return res


async def _mem_sampler(box):
    while True:
        gc.collect()
        a = gc.mem_alloc()
        if a > box[0]:
            box[0] = a
        await asyncio.sleep(0.1)


async def e2e(path, n_samples, store_dir, host, port):
    from at.engine import ATEngine
    from core.compat import Clock
    from core.stream import SerialPath
    from net.cellular import CellularPublisher
    from telelogger.loop import Telelogger
    from telelogger.store import Store

    base = BASE0
    loaded = mem()
    clock = Clock()
    at = ATEngine(SerialPath(path), clock)
    at.start()
    pub = CellularPublisher(at, clock, client_id=DEVICE, host=host, port=port, backoff_ms=50,
                            modem_cfg={"apn": "internet", "poll_ms": 50})
    store = Store(store_dir, 262144, 16384)
    t = Telelogger(cfg(pid_ms=100), pub, store, obd=FastObd(), clock=clock, device_id=DEVICE)  # 100 ms: the config minimum
    box = [0]
    sampler = asyncio.create_task(_mem_sampler(box))
    t0 = ticks_ms()
    t.start()
    first_pub = None
    while t.counters["samples"] < n_samples:
        await clock.sleep_ms(20)
        if first_pub is None and t.counters["batches"]:
            first_pub = ticks_diff(ticks_ms(), t0)
    t.stop()
    t.build_record()
    t1 = ticks_ms()
    while store.pending() and ticks_diff(ticks_ms(), t1) < 120000:
        try:
            if not pub.connected():
                await t.connect()
            await t.send_batch()
        except Exception as e:  # noqa: BLE001 - reported in the result
            print(json.dumps({"warn": str(e)}))
            await clock.sleep_ms(200)
    elapsed = ticks_diff(ticks_ms(), t0)
    c = t.counters
    res = {"samples": c["samples"], "records": c["records"], "last_seq": c["last_seq"], "sent": c["sent"],
           "batches": c["batches"], "pending": store.pending(), "send_errors": c["send_errors"],
           "connect_ms": pub.stats.get("connect_ms"), "first_publish_ms": first_pub, "elapsed_ms": elapsed,
           "base": base, "loaded": loaded}
    try:
        await pub.disconnect()
    except Exception as e:  # noqa: BLE001
        res["disconnect_error"] = str(e)
    at.stop()
    store.close()
    sampler.cancel()
    res.update(mem())
    res["mem_alloc_max"] = max(box[0], res["mem_alloc"])
    return res


def main(argv):
    mode = argv[0]
    if mode == "pipeline":
        r = asyncio.run(pipeline(int(argv[1]), argv[2], int(argv[3]) if len(argv) > 3 else 0))
    elif mode == "e2e":
        r = asyncio.run(e2e(argv[1], int(argv[2]), argv[3], argv[4], int(argv[5])))
    else:
        raise SystemExit("mode: pipeline | e2e")
    print(json.dumps({"result": r}))


if __name__ == "__main__":
    main(sys.argv[1:])
