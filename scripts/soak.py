"""Fault-injection soak: the real telelogger (Telelogger + CellularPublisher + ATEngine + Store + encode) against
the SIM7600 simulator and its in-memory broker, in one CPython process on VIRTUAL time (an asyncio loop whose
clock jumps to the next timer when every task waits), so an hour of driving runs in seconds and a run replays
exactly from its seed.

Faults (a random schedule per seed): CONNLOST in the middle of a publish, ping failure, NONET, error 11 (the
connection gone without a URC), error 14 (client busy), the modem silent, garbage and partial lines, URCs inside
replies, the modem rebooting (RDY), the broker down for minutes (the queue fills and drops its oldest records),
the ESP32 rebooting with records queued (tasks killed mid-send, a new telelogger on the same store), flash full
(writes fail with ENOSPC).

Every run checks by sequence number: every seq the store handed out reached the broker or was dropped by the
store's explicit drop-oldest policy (and the dropped counter, also published in status, equals those drops);
duplicates only come from re-sending a batch whose PUBACK a fault cut off; the firmware recovered on its own
(everything recorded before the last fault ended was acknowledged within RECOVER_MS) and the watchdog was fed.

  python scripts/soak.py --runs 20 --minutes 30 [--seed N] [--out soak-out]
"""

import argparse
import asyncio
import json
import os
import random
import selectors
import shutil
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for _p in (os.path.join(ROOT, "firmware"), os.path.join(ROOT, "host_tests"), os.path.join(ROOT, "host_tests", "mp")):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from at.engine import ATEngine  # noqa: E402
from fsfakes import FullFlashFS  # noqa: E402
from loopfakes import FakeObd  # noqa: E402
from net.cellular import from_config  # noqa: E402
from peers.sim7600 import Sim7600, SimStream  # noqa: E402
from peers.sim7600_mqtt import LocalBroker  # noqa: E402
from telelogger import config, encode, status  # noqa: E402
from telelogger.assembly import flat_config  # noqa: E402
from telelogger.modemctl import ModemCtl  # noqa: E402
from telelogger.loop import Telelogger, next_boot  # noqa: E402
from telelogger.store import Store  # noqa: E402

KINDS = (
    "connlost_mid_publish", "ping_fail", "nonet", "err11", "err14", "silence", "garbage", "partial_line",
    "urc_in_reply", "modem_reboot", "broker_down_long", "esp32_reboot", "flash_full",
)
RECOVER_MS = 20 * 60000  # after the last fault ends, everything recorded by then must be acked within this
WDT_MS = 60000  # assembly._WDT_TIMEOUT_MS: a longer gap between feeds would have reset the board
DEVICE = "SOAK01"
URCS = ("+CGEV: ME PDN ACT 1", "+CTZV: +40,0", "+CREG: 1", "+CPIN: READY", "SMS DONE")


# ---------------------------------------------------------------------------------------------- virtual time


class _VSelector(selectors.DefaultSelector):
    """Never blocks: when nothing is ready, the virtual clock jumps over the timeout instead."""

    loop = None

    def select(self, timeout=None):
        ready = super().select(0)
        if ready:
            return ready
        if timeout is None:
            raise RuntimeError("virtual loop: every task waits and no timer is set (deadlock)")
        if self.loop is not None and timeout > 0:
            self.loop.vt += timeout
        return ready


class VirtualLoop(asyncio.SelectorEventLoop):
    def __init__(self):
        sel = _VSelector()
        asyncio.SelectorEventLoop.__init__(self, sel)
        self.vt = 0.0
        sel.loop = self

    def time(self):
        return self.vt


class VClock:
    """core.compat.Clock on the running loop's (virtual) time."""

    def ticks_ms(self):
        return int(asyncio.get_event_loop().time() * 1000)

    def diff(self, a, b):
        return a - b

    def since(self, t0):
        return self.ticks_ms() - t0

    def sleep_ms(self, ms):
        return asyncio.sleep(ms / 1000)

    def wait_for_ms(self, aw, ms):
        return asyncio.wait_for(aw, ms / 1000)


# ---------------------------------------------------------------------------------------------- flash


class TrackStore(Store):
    """Store that remembers which seqs its drop-oldest policy discarded unacknowledged."""

    drops = None  # shared list of (lo, hi) across reboots

    def _drop_oldest(self):
        first = self._segs[0][0]
        end = self._segs[1][0] - 1 if len(self._segs) > 1 else self.next_seq - 1
        lo = max(first - 1, self.acked) + 1
        Store._drop_oldest(self)
        if end >= lo and self.drops is not None:
            self.drops.append((lo, end))


# ---------------------------------------------------------------------------------------------- one run


class CountingCodec:
    """telelogger.encode, counting the records the loop builds (stored or not)."""

    def __init__(self):
        self.records = 0

    def encode_record(self, *a):
        self.records += 1
        return encode.encode_record(*a)

    def __getattr__(self, name):
        return getattr(encode, name)


class Wdt:
    def __init__(self, clock):
        self.clock = clock
        self.last = None
        self.max_gap = 0

    def feed(self):
        now = self.clock.ticks_ms()
        if self.last is not None:
            self.max_gap = max(self.max_gap, now - self.last)
        self.last = now


def make_cfg(rng):
    return config.validate({
        "device_id": DEVICE, "encoding": rng.choice(("compact", "compact", "json")), "topic_prefix": "soak",
        "broker": {"host": "broker.test", "port": 1883, "tls": False, "keepalive": 60},
        "obd": {"enabled": True, "pids": {"0C": 1000, "0D": 1000, "05": 5000}},
        "gnss": {"source": "none"},
        "batch": {"max_records": rng.choice((5, 10, 20)), "max_age_ms": rng.choice((2000, 5000))},
        "intervals": {"battery_ms": 5000, "signal_ms": 30000, "status_ms": 30000},
        "queue": {"max_bytes": rng.choice((16384, 32768)), "segment_bytes": 2048},
    })


def _pick(rng, weights, total):
    x = rng.random() * total
    for k, w in weights:
        x -= w
        if x <= 0:
            return k
    return weights[-1][0]


class Run:
    def __init__(self, seed, minutes, root, log=None, cycle=False):
        self.cycle = cycle  # every kind in turn (shuffled rounds) instead of random picks
        self.seed = seed
        self.rng = random.Random(seed)
        self.minutes = minutes
        self.root = root
        self.log = log
        self.faults = {}
        self.events = []  # (t_ms, kind, detail) for the failure report
        self.boots = 0
        self.fault_end = 0
        self.wdt_gaps = []
        self.t = None

    # ---- device lifecycle
    def boot_device(self):
        self.boots += 1
        clock = self.clock
        at = ATEngine(SimStream(self.sim), clock)
        at.start()
        pub = from_config(at, flat_config(self.cfg), clock)
        r = random.Random(self.rng.getrandbits(32))
        pub._rng = lambda n: r.randrange(n) if n > 0 else 0
        q = self.cfg["queue"]
        store = TrackStore(self.qdir, q["max_bytes"], q["segment_bytes"], fs=self.fs)
        store.drops = self.drops
        self.wdt = Wdt(clock)
        t = Telelogger(self.cfg, pub, store, obd=FakeObd({0x0C: 1800, 0x0D: 50, 0x05: 88}), codec=self.codec,
                       modem=ModemCtl(pub, None, clock), clock=clock, wdt=self.wdt, device_id=DEVICE,
                       boot=next_boot(self.root + "/boot"))
        t.pick = pub._rng  # the loop's backoff jitter from the run's seed too: a run replays exactly
        t.at = at
        t.start()
        self.t = t

    def kill_device(self):
        t = self.t
        t.stop()
        t.at.stop()
        t.store.close()
        self.wdt_gaps.append(self.wdt.max_gap)
        self._account(t)

    def _account(self, t):
        self.unsaved_dropped += t.counters["unsaved_dropped"]
        self.store_errors += t.counters["store_errors"]
        self.ram_lost += len(t.unsaved)  # kept in RAM while the flash was full, gone with the reset

    # ---- faults
    def note(self, kind, detail=""):
        self.faults[kind] = self.faults.get(kind, 0) + 1
        self.events.append((int(self.clock.ticks_ms()), kind, detail))

    async def wait_pub_in_flight(self, limit_ms=30000):
        """Until the client has a PUBLISH in flight (True) or limit_ms passes (False)."""
        c = self.sim.clients[0]
        for _ in range(limit_ms // 5):
            if c.busy == "PUB":
                return True
            await asyncio.sleep(0.005)
        return False

    async def inject(self, kind):
        sim, rng = self.sim, self.rng
        now = self.clock.ticks_ms()
        if kind == "connlost_mid_publish":
            if await self.wait_pub_in_flight():
                sim.connlost(0, rng.choice((1, 2, 3)))
                self.note(kind)
        elif kind == "ping_fail":
            sim.ping_fail(0, rng.choice((17, 18)))
            self.note(kind)
        elif kind == "nonet":
            ms = rng.randrange(1000, 120000)
            sim.nonet(ms)
            self.fault_end = max(self.fault_end, now + ms)
            self.note(kind, ms)
        elif kind == "err11":
            if sim.drop_silently(0):
                self.note(kind)
        elif kind == "err14":
            n = rng.randrange(1, 4)
            sim.force_busy(n)
            self.note(kind, n)
        elif kind == "silence":
            ms = rng.randrange(500, 30000)
            sim.silence(ms)
            self.fault_end = max(self.fault_end, now + ms)
            self.note(kind, ms)
        elif kind == "garbage":
            sim.garbage(bytes(rng.randrange(1, 256) for _ in range(rng.randrange(1, 40))))
            self.note(kind)
        elif kind == "partial_line":
            sim.partial_line(rng.choice((b"+CMQTTR", b"+CMQ", b"\r\n+CMQTTPUB: 0", b"OK", b"\r\nER")))
            self.note(kind)
        elif kind == "urc_in_reply":
            sim.urc_in_next_reply(rng.choice(URCS))
            self.note(kind)
        elif kind == "modem_reboot":
            sim.reboot()
            self.fault_end = max(self.fault_end, now + 15000)
            self.note(kind)
        elif kind == "broker_down_long":
            ms = (rng.randrange(6, 10) if self.cycle else rng.randrange(5, 30)) * 60000
            sim.broker_unreachable = True
            sim.connlost(0, 1)
            self.note(kind, ms)
            await asyncio.sleep(ms / 1000)
            sim.broker_unreachable = False
            self.fault_end = max(self.fault_end, self.clock.ticks_ms())
        elif kind == "esp32_reboot":
            if rng.random() < 0.6:
                await self.wait_pub_in_flight()  # killed mid-send, PUBACK not seen
            else:
                await asyncio.sleep(rng.randrange(0, 3000) / 1000)
            self.note(kind, "pending %d" % self.t.store.pending())
            self.kill_device()
            await asyncio.sleep(rng.randrange(100, 3000) / 1000)  # the ESP32 boots
            self.boot_device()
            self.fault_end = max(self.fault_end, self.clock.ticks_ms())
        elif kind == "flash_full":
            ms = rng.randrange(2000, 60000)
            self.fs.full = True
            self.note(kind, ms)
            await asyncio.sleep(ms / 1000)
            self.fs.full = False
            self.fault_end = max(self.fault_end, self.clock.ticks_ms())

    async def scheduler(self, end_ms):
        rng = self.rng
        weights = [(k, 1.0) for k in KINDS]
        weights = [(k, 0.3 if k == "broker_down_long" else w) for k, w in weights]
        total = sum(w for _, w in weights)
        order = []
        while True:
            await asyncio.sleep(rng.expovariate(1.0 / 45.0))  # a fault every ~45 s of driving
            if self.clock.ticks_ms() >= end_ms:
                return
            if self.cycle:
                if not order:
                    order = list(KINDS)
                    rng.shuffle(order)
                k = order.pop()
            else:
                k = _pick(rng, weights, total)
            await self.inject(k)

    # ---- the run
    async def main(self):
        self.clock = VClock()
        self.broker = LocalBroker()
        ready = self.rng.random() < 0.7
        # URCs between a reply's information lines and its final result in 2 of 3 runs (simulator's urc_between)
        self.urc_between = self.rng.choice((0.0, 0.1, 0.3))
        self.sim = Sim7600(ready=ready, powered=True, broker=self.broker, clock=lambda: self.clock.ticks_ms() * 1.0,
                           seed=self.seed, utc=lambda: 1764000000.0 + self.clock.ticks_ms() / 1000.0,
                           urc_between=self.urc_between)
        # a URC may wait up to 3 s for the next reply to travel inside: the firmware sends little unprompted
        # (records reach flash and the broker in windows), so a 200 ms wait almost never met a reply
        self.sim.URC_BETWEEN_WINDOW_MS = 3000
        self.cfg = make_cfg(self.rng)
        self.qdir = self.root + "/queue"
        os.makedirs(self.qdir, exist_ok=True)
        self.fs = FullFlashFS()
        self.drops = []
        self.codec = CountingCodec()
        self.unsaved_dropped = self.store_errors = self.ram_lost = 0
        self.boot_device()
        t0 = self.clock.ticks_ms()
        end = t0 + int(self.minutes * 60000)
        await self.scheduler(end)
        if self.clock.ticks_ms() < end:
            await asyncio.sleep((end - self.clock.ticks_ms()) / 1000)
        # faults are over: the firmware must get back on its own and send everything recorded until then
        target = self.t.store.next_seq - 1
        fe = max(self.fault_end, self.clock.ticks_ms())
        deadline = fe + RECOVER_MS
        while self.clock.ticks_ms() < deadline:
            s = self.t.store
            if s.acked >= target and self.t.pub.connected():
                break
            await asyncio.sleep(0.5)
        self.recover_ms = self.clock.ticks_ms() - fe
        self.recovered = self.t.store.acked >= target
        # shut down like app.run: last record, drain, one last status (the published dropped counter)
        t = self.t
        t.stop()
        t.build_record()
        await t.drain(120000)
        try:
            await status.publish_status(t)
            self.status_ok = True
        except Exception as e:
            self.status_ok = "status not published: %s" % e
        self.wdt_gaps.append(self.wdt.max_gap)
        self.final_pending = t.store.pending()
        self.last_seq = t.store.next_seq - 1
        self.dropped = t.store.dropped
        self.counters = dict(t.counters)
        self._account(t)
        t.at.stop()
        t.store.close()
        self.urc_placed = self.sim.counters["urc_between"]
        self.sim_bugs = list(self.sim.internal_errors)
        self.sim.close()

    def run(self):
        wall = time.monotonic()
        loop = VirtualLoop()
        try:
            loop.run_until_complete(asyncio.wait_for(self.main(), (self.minutes * 60 + RECOVER_MS / 1000) * 4))
        finally:
            loop.close()
        self.wall_s = time.monotonic() - wall
        return self.check()

    # ---- the verdict
    def check(self):
        data_t = ("soak/%s/data" % DEVICE).encode()
        st_t = ("soak/%s/status" % DEVICE).encode()
        seqs = []
        last_status = None
        for tp, p, _q, _r in self.broker.messages:
            if tp == data_t:
                seqs.extend(r["seq"] for r in encode.decode_batch(p)["recs"])
            elif tp == st_t:
                last_status = json.loads(p)
        uniq = set(seqs)
        dropped_set = set()
        for lo, hi in self.drops:
            dropped_set.update(range(lo, hi + 1))
        allseq = set(range(1, self.last_seq + 1))
        missing = allseq - uniq
        lost = sorted(missing - dropped_set)
        problems = []
        if lost:
            problems.append("%d records lost (not delivered, not counted as dropped): %s" % (len(lost), lost[:20]))
        if uniq - allseq:
            problems.append("unknown seqs at the broker: %s" % sorted(uniq - allseq)[:10])
        ndrop = sum(hi - lo + 1 for lo, hi in self.drops)
        if ndrop != self.dropped:
            problems.append("dropped counter %d != records dropped by the policy %d" % (self.dropped, ndrop))
        if last_status is None or last_status.get("dropped") != self.dropped:
            problems.append("status does not publish the dropped counter %d: %s" % (
                self.dropped, None if last_status is None else last_status.get("dropped")))
        dups = len(seqs) - len(uniq)
        # at-least-once: a re-sent batch per fault that can cut a PUBACK off, at most
        redeliver = sum(self.faults.get(k, 0) for k in (
            "connlost_mid_publish", "ping_fail", "nonet", "modem_reboot", "broker_down_long", "esp32_reboot",
            "silence", "garbage", "partial_line", "urc_in_reply", "err11", "err14", "flash_full"))
        if dups > redeliver * self.cfg["batch"]["max_records"]:
            problems.append("%d duplicates for %d faults (more than a batch per fault)" % (dups, redeliver))
        if dups and not redeliver:
            problems.append("%d duplicates without any fault" % dups)
        if not self.recovered:
            problems.append("not recovered %d s after the last fault" % (RECOVER_MS // 1000))
        built = self.codec.records
        if built != self.last_seq + self.unsaved_dropped + self.ram_lost:
            problems.append("records built %d != stored %d + dropped from RAM %d + in RAM at a reset %d" % (
                built, self.last_seq, self.unsaved_dropped, self.ram_lost))
        if self.final_pending:
            problems.append("%d records still queued after the final drain" % self.final_pending)
        if self.status_ok is not True:
            problems.append(str(self.status_ok))
        gap = max(self.wdt_gaps or [0])
        if gap > WDT_MS:
            problems.append("watchdog not fed for %d ms" % gap)
        for cmd, tb in self.sim_bugs:
            problems.append("SIM7600 simulator bug on %r: %s" % (cmd, tb.strip().splitlines()[-1]))
        return {
            "seed": self.seed, "minutes": self.minutes, "faults": dict(self.faults), "records": self.last_seq,
            "delivered": len(uniq), "messages": len(seqs), "duplicates": dups, "dropped": self.dropped,
            "losses": len(lost), "recover_ms": self.recover_ms, "boots": self.boots, "wdt_max_gap_ms": gap,
            "reconnects": self.counters.get("reconnects"), "send_errors": self.counters.get("send_errors"),
            "enospc": self.fs.enospc, "store_errors": self.store_errors, "ram_dropped": self.unsaved_dropped,
            "ram_lost_at_reset": self.ram_lost, "wall_s": round(self.wall_s, 2), "problems": problems,
            "urc_between": self.urc_between, "urcs_between_placed": self.urc_placed,
        }


def run_one(seed, minutes, keep=False, cycle=False):
    root = tempfile.mkdtemp(prefix="soak-%d-" % seed)
    try:
        return Run(seed, minutes, root, cycle=cycle).run()
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)


def summarize(results):
    faults = {}
    for r in results:
        for k, n in r["faults"].items():
            faults[k] = faults.get(k, 0) + n
    keys = ("records", "delivered", "messages", "duplicates", "dropped", "losses", "ram_dropped", "ram_lost_at_reset",
            "store_errors")
    tot = dict((k, sum(r[k] for r in results)) for k in keys)
    tot["runs"] = len(results)
    tot["faults"] = dict(sorted(faults.items()))
    tot["faults_total"] = sum(faults.values())
    tot["simulated_minutes"] = sum(r["minutes"] for r in results)
    tot["max_recover_ms"] = max([r["recover_ms"] for r in results] or [0])
    tot["failed_seeds"] = [r["seed"] for r in results if r["problems"]]
    return tot


def table(results, tot):
    lines = ["%10s %5s %6s %7s %8s %5s %5s %5s %6s %5s  %s" % (
        "seed", "min", "faults", "records", "deliverd", "dups", "drop", "loss", "rec_s", "wall", "problems")]
    for r in results:
        lines.append("%10d %5g %6d %7d %8d %5d %5d %5d %6d %5.1f  %s" % (
            r["seed"], r["minutes"], sum(r["faults"].values()), r["records"], r["delivered"], r["duplicates"],
            r["dropped"], r["losses"], r["recover_ms"] // 1000, r["wall_s"], "; ".join(r["problems"]) or "-"))
    lines.append("runs %d, simulated %g min, faults %d: %s" % (
        tot["runs"], tot["simulated_minutes"], tot["faults_total"],
        ", ".join("%s %d" % kv for kv in tot["faults"].items())))
    lines.append("records %d, delivered %d, duplicates %d, counted drops %d (queue full) + %d (flash full, RAM), "
                 "lost in RAM at a reset %d, LOSSES %d, max recovery %d s" % (
                     tot["records"], tot["delivered"], tot["duplicates"], tot["dropped"], tot["ram_dropped"],
                     tot["ram_lost_at_reset"], tot["losses"], tot["max_recover_ms"] // 1000))
    return "\n".join(lines)


def write_summary(results, out_dir):
    tot = summarize(results)
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "summary.json"), "w") as f:
        json.dump({"totals": tot, "runs": results}, f, indent=1, sort_keys=True)
    return tot


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=int(os.environ.get("SOAK_RUNS", "10")))
    ap.add_argument("--minutes", type=float, default=30.0, help="simulated driving per run")
    ap.add_argument("--seed", type=int, help="replay one seed")
    ap.add_argument("--out", default=os.path.join(ROOT, "soak-out"))
    args = ap.parse_args(argv)
    seeds = [args.seed] if args.seed is not None else [random.randrange(1 << 30) for _ in range(args.runs)]
    results = []
    for s in seeds:
        r = run_one(s, args.minutes)
        results.append(r)
        print("seed %d: %d records, %d faults, %d losses %s" % (
            s, r["records"], sum(r["faults"].values()), r["losses"], "; ".join(r["problems"])), flush=True)
    tot = write_summary(results, args.out)
    print(table(results, tot))
    return 1 if tot["failed_seeds"] else 0


if __name__ == "__main__":
    sys.exit(main())
