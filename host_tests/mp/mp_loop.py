# Telelogger loop tests on both runtimes (virtual clock, fakes in loopfakes.py): per-PID
# scheduling, store-first, oldest-first sending, ack only after publish, offline then online.
import json

from loopfakes import Codec, FakeObd, FakeGnss, GatePublisher, MemStore, cfg, make, sent_seqs, stop, validated
from fakepub import FakePublisher
from telelogger import status

UNSAVED_MAX = 16  # records kept in RAM while the flash refuses writes (telelogger/loop.py _UNSAVED_MAX)



async def test_pid_intervals_and_supported():
    obd = FakeObd({0x0C: 1800, 0x0D: 50, 0x05: 88, 0x0A: 300}, supported={0x0C, 0x0D, 0x05})
    c = cfg()
    c["obd"]["pids"]["0A"] = 1000  # not supported by the vehicle: never read
    t, clk, pub, store, obd = make(c, obd=obd)
    t.start()
    await clk.advance(30000)
    await stop(t, clk)
    fast, slow = obd.reads[0x0C], obd.reads[0x05]
    assert 28 <= fast <= 32, obd.reads
    assert 9 <= slow <= 11, obd.reads
    assert obd.reads[0x0D] == fast
    assert 0x0A not in obd.reads
    assert t.counters["obd_errors"] == 0


async def test_failing_pid_backs_off_others_continue():
    obd = FakeObd({0x0C: 1800, 0x0D: 50, 0x05: 88}, failing=(0x05,))
    c = cfg()
    c["obd"]["pids"]["05"] = 1000
    t, clk, pub, store, obd = make(c, obd=obd)
    t.start()
    await clk.advance(60000)
    await stop(t, clk)
    assert obd.reads[0x0C] >= 58
    assert obd.reads[0x05] <= 10, obd.reads  # exponential back-off, not every second
    assert t.counters["obd_errors"] == obd.reads[0x05]
    assert status.status(t)["pid_errors"] == {"05": obd.reads[0x05]}
    assert obd.inits == 1  # other PIDs answer: no re-init


async def test_dead_ecu_reinit():
    obd = FakeObd({}, failing=(0x0C, 0x0D, 0x05))
    t, clk, pub, store, obd = make(obd=obd)
    t.start()
    await clk.advance(120000)
    await stop(t, clk)
    assert obd.inits >= 2


async def test_store_first_and_offline_then_online_in_order():
    pub = FakePublisher()
    pub.up = False
    gnss = FakeGnss()
    t, clk, pub, store, obd = make(pub=pub, gnss=gnss)
    t.start()
    await clk.advance(15000)
    assert pub.sent == []
    queued = store.pending()
    assert queued >= 13, queued  # ~1 record/s kept while offline
    assert t.counters["connect_errors"] >= 3
    pub.up = True
    await clk.advance(12000)  # reconnect back-off is at most 8 s here
    await stop(t, clk)
    seqs = sent_seqs(pub)
    assert seqs == list(range(1, len(seqs) + 1)), seqs  # everything, oldest first, once
    assert len(seqs) + store.pending() == store.seq
    assert store.pending() <= 5
    # each record carries OBD and GNSS samples
    first = json.loads(pub.sent[0][1])["e"][0][1]
    keys = [kv[0] for kv in first[2]]
    assert 0x10C in keys and 0x0A in keys and 0x0B in keys


async def test_reconnect_backoff_is_exponential_with_jitter():
    """The sender's retry waits come from net.publisher.backoff_ms with the loop's jitter source:
    shortest picks wait 500, 1000, 2000 ms (b/2), longest 1000, 2000, 4000 ms (b)."""
    attempts = []
    for pick in (lambda n: 0, lambda n: n - 1):
        pub = FakePublisher()
        pub.up = False
        t, clk, pub, store, obd = make(pub=pub)
        t.pick = pick
        t.start()
        await clk.advance(3600)
        await stop(t, clk)
        attempts.append(t.counters["connect_errors"])
    assert attempts == [4, 3], attempts  # at 0, 0.5, 1.5, 3.5 s vs at 0, 1, 3 s


async def test_publish_failure_keeps_records():
    t, clk, pub, store, obd = make()
    t.start()
    await clk.advance(6500)
    assert len(pub.sent) >= 1
    pub.fail_next(2)
    await clk.advance(15000)
    await stop(t, clk)
    assert t.counters["send_errors"] >= 1
    seqs = sent_seqs(pub)
    assert seqs == list(range(1, len(seqs) + 1)), seqs
    assert len(seqs) + store.pending() == store.seq


async def test_ack_only_after_publish_returned():
    pub = GatePublisher()
    t, clk, pub, store, obd = make(pub=pub)
    t.start()
    await clk.advance(8000)
    assert pub.waiting == 1
    n = store.pending()
    assert n >= 5 and store.recs[0][0] == 1  # nothing acked while PUBACK is outstanding
    pub.gate.set()
    await clk.advance(100)
    await stop(t, clk)
    assert store.recs == [] or store.recs[0][0] > 5
    assert sent_seqs(pub)[:5] == [1, 2, 3, 4, 5]


async def test_records_slow_down_while_parked():
    moving, clk, pub, store, obd = make()
    moving.start()
    for _ in range(4):
        await clk.advance(30000)
        pub.sent = []  # only the counters matter: keep the heap small
    await stop(moving, clk)
    assert moving.counters["records"] >= 115
    parked, clk, pub, store, obd = make(obd=FakeObd({0x0C: 800, 0x0D: 0, 0x05: 88}))
    parked.start()
    for _ in range(4):
        await clk.advance(30000)
        pub.sent = []
    await stop(parked, clk)
    # 1 s for 10 s, 2 s until 60 s, then 5 s (official intervals): ~10 + 25 + 12
    assert 40 <= parked.counters["records"] <= 55, parked.counters["records"]


def test_flash_full_keeps_records_in_ram_in_order_and_counts_overflow():
    import json

    from loopfakes import make

    from telelogger import status

    t, clk, pub, store, obd = make()
    real = store.append
    full = [True]

    def append(rec, sync=True):
        if full[0]:
            raise OSError(28, "ENOSPC")
        return real(rec, sync)

    store.append = append
    n = UNSAVED_MAX + 3
    for i in range(n):
        t.sample(0x10C, 1000 + i)
        try:
            t.build_record()
            raise AssertionError("append on a full flash must raise")
        except OSError:
            pass
    assert store.recs == [] and len(t.unsaved) == UNSAVED_MAX
    assert t.counters["store_errors"] == n and t.counters["unsaved_dropped"] == 3
    st = status.status(t)
    assert st["unsaved_dropped"] == 3 and st["store_errors"] == n
    full[0] = False
    t.sample(0x10C, 5000)
    seq = t.build_record()
    vals = [json.loads(r)[2][0][1] for _, r in store.recs]
    assert vals == [1000 + i for i in range(3, n)] + [5000], vals  # oldest first, only the counted 3 gone
    assert seq == store.recs[-1][0] and t.counters["records"] == len(vals) and t.unsaved == []


class _OomCodec(Codec):
    """Codec whose encode_record raises MemoryError `fails` times from call number `after` on."""

    def __init__(self, after, fails):
        self.calls = 0
        self.after = after
        self.fails = fails

    def encode_record(self, ts_ms, utc, samples, boot=0):
        self.calls += 1
        if self.calls > self.after and self.fails:
            self.fails -= 1
            raise MemoryError("memory allocation failed, allocating 279 bytes")
        return Codec.encode_record(ts_ms, utc, samples, boot)


def _reset_path():
    import os

    p = "/tmp/mp_loop_last_reset_%d.txt" % id(_OomCodec)
    try:
        os.remove(p)
    except OSError:
        pass
    return p


async def test_memory_error_is_retried_and_counted():
    t, clk, pub, store, obd = make()
    resets = []
    t.codec = _OomCodec(after=3, fails=2)
    t.reset_cb = resets.append
    t.start()
    await clk.advance(20000)
    await stop(t, clk)
    assert t.counters["mem_errors"] == 2 and resets == [] and t.reset_reason is None
    assert status.status(t)["mem_errors"] == 2
    assert t.counters["records"] >= 14, t.counters  # the record task came back after gc + back-off
    seqs = sent_seqs(pub) + [s for s, r in store.recs]
    assert seqs == list(range(1, len(seqs) + 1))  # nothing stored was lost or reordered


async def test_memory_error_that_persists_resets_with_reason():
    path = _reset_path()
    t, clk, pub, store, obd = make()
    pub.up = False  # offline: what is stored stays queued across the reset
    resets = []
    t.codec = _OomCodec(after=5, fails=1000)
    t.reset_cb = resets.append
    t.reset_path = path
    t.start()
    await clk.advance(6000)
    queued = list(store.recs)
    assert len(queued) == 5 and t.counters["mem_errors"] >= 1
    await clk.advance(60000)
    await stop(t, clk)
    assert len(resets) == 1 and t.reset_reason == resets[0], resets
    assert "record" in resets[0] and "MemoryError" in resets[0]
    assert resets[0].endswith("last in task record (memory allocation failed, allocating 279 bytes)"), resets
    assert t.counters["mem_errors"] == 5  # 5 faults within 60 s, then no livelock: the tasks ended
    assert store.recs == queued  # the queue is intact for the next boot
    with open(path) as f:
        assert f.read().strip() == resets[0]
    # next boot: the status says why the previous one reset, once
    t2, clk2, pub2, store2, obd2 = make()
    assert t2.last_reset is None  # no reset_path given: nothing read
    from telelogger.loop import Telelogger

    t3 = Telelogger(validated(), pub2, store2, clock=clk2, codec=Codec, reset_path=path)
    assert status.status(t3)["last_reset"] == resets[0]
    t4 = Telelogger(validated(), pub2, store2, clock=clk2, codec=Codec, reset_path=path)
    assert t4.last_reset is None  # read once, then removed


async def test_run_returns_after_memory_reset():
    t, clk, pub, store, obd = make()
    t.codec = _OomCodec(after=0, fails=1000)
    resets = []
    t.reset_cb = resets.append
    import asyncio

    task = asyncio.create_task(t.run())
    await clk.advance(30000)
    await clk.settle()
    assert resets and task.done()
    t.stop()


class _GreedyStore(MemStore):
    """A store whose append, from the 4th record on, asks the allocator for more than any heap has:
    a real MemoryError from the runtime, not one raised by the fake."""

    def append(self, rec, sync=True):
        import sys

        if self.seq >= 3:
            bytearray(2 ** 62 if sys.implementation.name == "cpython" else 2 ** 28)
        return MemStore.append(self, rec, sync)


async def test_allocator_memory_error_is_the_same_fault():
    t, clk, pub, store, obd = make()
    pub.up = False
    t.store = _GreedyStore()
    resets = []
    t.reset_cb = resets.append
    t.start()
    await clk.advance(70000)
    await stop(t, clk)
    assert len(resets) == 1 and "task record" in resets[0], resets
    assert [s for s, r in t.store.recs] == [1, 2, 3] and t.counters["mem_errors"] == 5
    assert t.unsaved  # the record that could not be stored is still in RAM, not dropped


async def test_records_reach_flash_once_per_sync_window():
    """Flash wear: records wait in RAM and are written with one sync per queue.sync_ms window (a
    synced append costs LittleFS about one block erase); stopping writes what is waiting."""
    from loopfakes import cfg

    pub = FakePublisher()
    pub.up = False  # nothing leaves: every record stays in the store
    t, clk, pub, store, obd = make(c=cfg(queue={"sync_ms": 5000}, batch={"max_records": 50, "max_age_ms": 60000}))
    t.start()
    await clk.advance(4500)
    assert store.pending() == 0 and len(t.unsaved) >= 3, (store.pending(), len(t.unsaved))
    await clk.advance(6000)  # two windows over
    n = store.pending()
    assert n >= 9 and store.syncs <= 3, (n, store.syncs)  # ~10 records, one sync per window
    await stop(t, clk)
    assert t.unsaved == [] and store.pending() == t.counters["records"] >= n
    seqs = [s for s, _ in store.recs]
    assert seqs == list(range(1, len(seqs) + 1))


async def test_sync_window_zero_syncs_every_record():
    from loopfakes import cfg

    pub = FakePublisher()
    pub.up = False
    t, clk, pub, store, obd = make(c=cfg(queue={"sync_ms": 0}, batch={"max_records": 50, "max_age_ms": 60000}))
    t.start()
    await clk.advance(5500)
    assert store.pending() >= 5 and store.syncs >= store.pending()
    await stop(t, clk)


def test_last_keeps_only_the_shown_keys_every_sample_goes_into_the_record():
    """t.last holds the latest value of what the status and the progress line show (rpm, speed, lat,
    lng, battery, signal); every other sample only goes into the record being built."""
    t, clk, pub, store, obd = make()
    t.sample(0x10C, 1800)  # rpm
    t.sample(0x105, 88)  # coolant: recorded, not shown
    t.sample(0x24, 13.6)  # battery
    t.sample(0x81, -73)  # signal
    t.sample(0x0F, 9)  # satellites: recorded, not shown
    assert t.last == {0x10C: 1800, 0x24: 13.6, 0x81: -73}, t.last
    st = status.status(t)
    assert st["voltage"] == 13.6 and st["signal"] == -73
    t.build_record()
    assert sorted(k for k, v in json.loads(store.recs[-1][1])[2]) == [0x0F, 0x24, 0x81, 0x105, 0x10C]
    t.sample(0x10C, 1900)
    # t.pending keeps its keys from record to record (no dict rebuilt per record): None = no sample yet
    assert t.last[0x10C] == 1900 and {k: v for k, v in t.pending.items() if v is not None} == {0x10C: 1900}
    n = len(store.recs)
    t.build_record()  # the next record: only what was sampled since the last one
    assert len(store.recs) == n + 1 and json.loads(store.recs[-1][1])[2] == [[0x10C, 1900]], store.recs[-1]
    t.build_record()  # nothing sampled since: no record
    assert len(store.recs) == n + 1
