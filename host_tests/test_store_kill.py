"""Crash safety of telelogger.store: a MicroPython writer appends and acks in a loop and is
SIGKILLed at random points; after each kill the queue is reopened and checked:
no damaged record returned, seqs strictly increasing (also across restarts), no acked record
returned again, every record whose append returned and that was not acked is still there.
Some runs also leave a torn half-record at the end (what a power cut mid-write leaves)."""
import os
import random
import signal
import subprocess

import pytest

from mphost import spawn_mp
from telelogger.store import Store

MAX_BYTES = 65536
HDR = 11  # the record header (telelogger/FORMAT.md): magic 0xA7, u16 length, u32 seq, u32 CRC32


def _hdr(seq, payload):
    """A record header written from FORMAT.md (not the store's code): the CRC covers bytes 0..6 and the payload."""
    import binascii

    h = bytes([0xA7, len(payload) & 0xFF, len(payload) >> 8]) + seq.to_bytes(4, "little")
    return h + binascii.crc32(payload, binascii.crc32(h)).to_bytes(4, "little")
SEG = 2048

WRITER = r"""
import sys
from telelogger.store import Store

def payload(seq):
    b = ("rec-%d-" % seq).encode()
    n = 8 + (seq * 7) % 60
    return (b * (n // len(b) + 1))[:n]

q = Store(sys.argv[1], MAXB, SEGB)
print("OPEN %d %d" % (q.next_seq, q.acked))
for i in range(200000):
    s = q.append(payload(q.next_seq))
    print("A %d" % s)
    if q.pending() > 25:
        got = q.peek(12)
        for seq, rec in got:
            if rec != payload(seq):
                print("BAD %d" % seq)
        print("P %d" % got[-1][0])  # about to ack: a kill from here to "K" may or may not have acked
        q.ack(got[-1][0])
        print("K %d" % got[-1][0])
""".replace("MAXB", str(MAX_BYTES)).replace("SEGB", str(SEG))


def payload(seq):
    b = ("rec-%d-" % seq).encode()
    n = 8 + (seq * 7) % 60
    return (b * (n // len(b) + 1))[:n]


def _run_and_kill(script, root, lines_before_kill):
    p = spawn_mp(script, [root], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = []
    try:
        while len(out) < lines_before_kill:
            line = p.stdout.readline()
            if not line:
                break
            out.append(line)
        os.kill(p.pid, signal.SIGKILL)
        rest = p.stdout.read()
    finally:
        if p.poll() is None:
            p.kill()
        p.wait(timeout=60)
    text = b"".join(out) + rest
    # only complete lines count: a line cut by the kill proves nothing
    lines = text.split(b"\n")[:-1]
    return [ln.decode() for ln in lines]


def _tear(root, rng):
    segs = sorted(n for n in os.listdir(root) if n.endswith(".seg"))
    if not segs:
        return 0
    body = b"t" * rng.randint(1, 60)
    h = _hdr(10**9, body)  # a seq no one was given; never fully written
    cut = rng.randint(1, HDR + len(body) - 1)
    with open(os.path.join(root, segs[-1]), "ab") as f:
        f.write((h + body)[:cut])
    return cut


@pytest.mark.micropython
def test_sigkill_never_loses_or_corrupts(tmp_path):
    # the seed replays every random choice (kill delays, tear points; the kill itself lands where the
    # writer is at that moment): STORE_KILL_SEED=<n> pytest host_tests/test_store_kill.py
    seed = int(os.environ.get("STORE_KILL_SEED") or int.from_bytes(os.urandom(4), "little"))
    print("test_store_kill: seed %d (replay: STORE_KILL_SEED=%d)" % (seed, seed))
    rng = random.Random(seed)
    root = str(tmp_path / "q")
    script = str(tmp_path / "writer.py")
    with open(script, "w") as f:
        f.write(WRITER)
    appended = set()
    acked = 0
    acking = 0  # highest seq whose ack was started ("P"): acked or not, both are correct after a kill
    max_seq = 0
    torn_runs = 0
    for run in range(14):
        lines = _run_and_kill(script, root, rng.randint(2, 600))
        assert lines and lines[0].startswith("OPEN"), "writer did not start (seed %d):\n%s" % (seed, "\n".join(lines[-20:]))
        first_next = int(lines[0].split()[1])
        assert first_next > max_seq, "seq went back after restart: next %d, already handed out %d" % (first_next, max_seq)
        for ln in lines[1:]:
            kind, _, val = ln.partition(" ")
            if kind == "A":
                s = int(val)
                assert s > max_seq, "seq not increasing: %d after %d" % (s, max_seq)
                max_seq = s
                appended.add(s)
            elif kind == "P":
                acking = max(acking, int(val))
            elif kind == "K":
                acked = max(acked, int(val))
            elif kind == "BAD":
                pytest.fail("writer read back a wrong record %s (seed %d)" % (val, seed))
            else:
                pytest.fail("unexpected writer output %r" % ln)
        if run % 3 == 1:
            torn_runs += 1 if _tear(root, rng) else 0
        # reopen on CPython with the same code and check everything
        q = Store(root, MAX_BYTES, SEG)
        assert q.dropped == 0
        got = q.peek(100000)
        seqs = [s for s, _ in got]
        assert seqs == sorted(set(seqs)), "seqs not strictly increasing (seed %d)" % seed
        for s, rec in got:
            assert rec == payload(s), "damaged record %d returned (seed %d)" % (s, seed)
            assert s > acked, "acked record %d returned again (acked up to %d, seed %d)" % (s, acked, seed)
        missing = sorted(s for s in appended if s > max(acked, acking) and s not in set(seqs))
        if got:  # what the reopened store returns decides where an interrupted ack ended
            acked = max(acked, got[0][0] - 1)
        assert not missing, "appended, unacked records lost: %s (seed %d)" % (missing[:10], seed)
        q.close()
    assert max_seq > 14
    assert torn_runs >= 1
