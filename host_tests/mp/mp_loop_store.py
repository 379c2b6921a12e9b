# The telelogger loop with the real telelogger.store and telelogger.encode (both runtimes):
# offline records are kept on flash and delivered oldest-first, once each, when back online.
import os

from loopfakes import FakeClock, FakeObd, cfg, stop, validated
from fakepub import FakePublisher

from telelogger.loop import Telelogger


async def test_real_store_and_encode():
    # no skip on MemoryError: a heap regression must fail (issue 12 §2)
    from telelogger import decode, encode
    from telelogger.store import Store

    import time

    root = "/tmp/mp_loop_store_%d" % (time.time_ns() % 1000000000 if hasattr(time, "time_ns") else time.time())
    os.mkdir(root)
    store = Store(root, 64 * 1024, 4096)
    base = store.pending()
    assert base == 0
    clk = FakeClock()
    pub = FakePublisher()
    pub.up = False
    t = Telelogger(validated(cfg(encoding="compact")), pub, store, obd=FakeObd({0x0C: 1800, 0x0D: 50, 0x05: 88}),
                   clock=clk, codec=encode)
    t.start()
    await clk.advance(10000)
    assert store.pending() >= base + 9
    pub.up = True
    await clk.advance(15000)
    await stop(t, clk)
    seqs = []
    rpm = []
    for tp, p, _q in pub.sent:
        if tp.endswith("/data"):
            d = decode.decode_batch(p)
            assert d["dev"] == "TEST01"
            for r in d["recs"]:
                seqs.append(r["seq"])
                rpm.append(r.get("rpm"))
    why = (seqs, store.pending(), t.counters)
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), why  # oldest first, each once
    assert len(seqs) + store.pending() == t.counters["records"], why
    assert store.pending() <= 5, why
    assert rpm[0] == 1800
    store.close()
    for n in os.listdir(root):
        os.remove(root + "/" + n)
    os.rmdir(root)
