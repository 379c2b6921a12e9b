# telelogger.store on both runtimes: append/peek/ack, reopen, torn records, drop-oldest, seq persistence.
import os

from fsfakes import FullFlashFS
from mptest import raises
from telelogger import store as S
from telelogger.store import Store


def _tmpdir():
    d = "/tmp/mpstore-" + "".join("%02x" % b for b in os.urandom(6))
    os.mkdir(d)
    return d


def _rmtree(d):
    for n in os.listdir(d):
        os.remove(d + "/" + n)
    os.rmdir(d)


def _rec(i, n=20):
    b = ("r%d-" % i).encode()
    return (b * (n // len(b) + 1))[:n]


def _size(path):
    return os.stat(path)[6]


HDR = 11  # the record header (telelogger/FORMAT.md): magic 0xA7, u16 length, u32 seq, u32 CRC32


def _hdr(seq, payload):
    """A record header written from FORMAT.md (not the store's code): the CRC covers bytes 0..6 and the payload."""
    from binascii import crc32

    h = bytes([0xA7, len(payload) & 0xFF, len(payload) >> 8]) + seq.to_bytes(4, "little")
    return h + crc32(payload, crc32(h)).to_bytes(4, "little")


def _segs(d):
    return sorted(n for n in os.listdir(d) if n.endswith(".seg"))


def test_append_peek_ack_in_order():
    d = _tmpdir()
    try:
        q = Store(d, 8192, 1024)
        seqs = [q.append(_rec(i)) for i in range(10)]
        assert seqs == list(range(1, 11))
        assert q.pending() == 10
        got = q.peek(4)
        assert [s for s, _ in got] == [1, 2, 3, 4]
        assert got[2][1] == _rec(2)
        assert q.peek(4) == got  # peek does not consume
        q.ack(4)
        assert q.pending() == 6
        got = q.peek(100)
        assert [s for s, _ in got] == list(range(5, 11))
        assert [r for _, r in got] == [_rec(i) for i in range(4, 10)]
        q.ack(10)
        assert q.peek(5) == []
        assert q.pending() == 0
        q.close()
    finally:
        _rmtree(d)


def test_reopen_keeps_unacked_and_seq():
    d = _tmpdir()
    try:
        q = Store(d, 8192, 512)
        for i in range(30):
            q.append(_rec(i, 40))
        q.ack(12)
        q.close()
        q = Store(d, 8192, 512)
        assert q.pending() == 18
        got = q.peek(100)
        assert [s for s, _ in got] == list(range(13, 31))
        assert got[0][1] == _rec(12, 40)
        assert q.append(b"after") == 31
        q.close()
    finally:
        _rmtree(d)


def test_ack_deletes_whole_segments_only():
    d = _tmpdir()
    try:
        q = Store(d, 16384, 512)
        for i in range(40):
            q.append(_rec(i, 50))  # 61 bytes on flash: 8 per 512-byte segment
        n0 = len(_segs(d))
        assert n0 >= 5
        first = _segs(d)[0]
        q.ack(3)  # inside the first segment: nothing deleted
        assert _segs(d)[0] == first
        q.ack(20)
        segs = _segs(d)
        assert len(segs) < n0
        # the oldest remaining segment still holds record 21
        assert int(segs[0][:10]) <= 21
        assert q.peek(1)[0][0] == 21
        q.close()
    finally:
        _rmtree(d)


def test_seq_persists_when_everything_acked_and_deleted():
    d = _tmpdir()
    try:
        q = Store(d, 8192, 1024)
        for i in range(5):
            q.append(_rec(i))
        q.ack(5)
        assert _segs(d) == []
        q.close()
        q = Store(d, 8192, 1024)
        assert q.pending() == 0
        assert q.append(b"x") == 6
        q.close()
    finally:
        _rmtree(d)


def test_torn_last_record_is_cut():
    d = _tmpdir()
    try:
        q = Store(d, 8192, 4096)
        for i in range(6):
            q.append(_rec(i, 30))
        q.close()
        seg = d + "/" + _segs(d)[-1]
        good = _size(seg)
        with open(seg, "ab") as f:  # a record whose payload never fully reached flash
            h = _hdr(7, b"y" * 30)
            f.write(h + b"y" * 10)
        q = Store(d, 8192, 4096)
        assert q.recovered == HDR + 10
        assert _size(seg) == good
        assert [s for s, _ in q.peek(100)] == [1, 2, 3, 4, 5, 6]
        assert q.append(b"next") == 7
        q.close()
        q = Store(d, 8192, 4096)
        assert q.peek(100)[-1] == (7, b"next")
        q.close()
    finally:
        _rmtree(d)


def test_corrupted_payload_is_never_returned():
    d = _tmpdir()
    try:
        q = Store(d, 8192, 4096)
        for i in range(4):
            q.append(_rec(i, 30))
        q.close()
        seg = d + "/" + _segs(d)[-1]
        with open(seg, "rb") as f:
            b = bytearray(f.read())
        b[3 * (HDR + 30) + HDR + 5] ^= 0x40  # flip a bit in record 4's payload
        with open(seg, "wb") as f:
            f.write(b)
        q = Store(d, 8192, 4096)
        assert [r for _, r in q.peek(10)] == [_rec(i, 30) for i in range(3)]
        assert q.append(b"z") == 4  # the damaged record was cut, its seq reused: never handed out twice
        q.close()
    finally:
        _rmtree(d)


def test_full_queue_drops_oldest_and_counts():
    d = _tmpdir()
    try:
        q = Store(d, 4096, 1024)
        for i in range(200):
            q.append(_rec(i, 50))
        assert q.size() <= 4096
        assert q.dropped > 0
        got = q.peek(1000)
        seqs = [s for s, _ in got]
        assert seqs[-1] == 200
        assert seqs == list(range(seqs[0], 201))
        assert q.dropped == seqs[0] - 1  # everything older was dropped, nothing acked
        assert q.pending() == len(seqs)
        dropped = q.dropped
        q.close()
        q = Store(d, 4096, 1024)
        assert q.dropped == dropped
        assert q.peek(1)[0][0] == seqs[0]
        assert q.append(b"n") == 201
        q.close()
    finally:
        _rmtree(d)


def test_drop_counts_only_unacked_records():
    d = _tmpdir()
    try:
        q = Store(d, 4096, 1024)
        for i in range(10):
            q.append(_rec(i, 50))
        q.ack(10)
        for i in range(10, 200):
            q.append(_rec(i, 50))
        seqs = [s for s, _ in q.peek(1000)]
        assert q.dropped == seqs[0] - 11
        q.close()
    finally:
        _rmtree(d)


def test_ack_beyond_end_and_backwards_is_harmless():
    d = _tmpdir()
    try:
        q = Store(d, 8192, 1024)
        q.append(b"a")
        q.append(b"b")
        q.ack(1)
        q.ack(0)
        assert q.peek(5) == [(2, b"b")]
        q.ack(99)
        assert q.pending() == 0
        assert q.append(b"c") == 3
        q.close()
    finally:
        _rmtree(d)


def test_state_survives_crash_between_remove_and_rename():
    d = _tmpdir()
    try:
        q = Store(d, 8192, 1024)
        for i in range(5):
            q.append(_rec(i))
        q.ack(2)
        q.close()
        # what a FAT-style rename fallback leaves behind if power fails mid-way
        os.rename(d + "/state", d + "/state.tmp")
        q = Store(d, 8192, 1024)
        assert [s for s, _ in q.peek(10)] == [3, 4, 5]
        q.close()
    finally:
        _rmtree(d)


def test_bad_sizes_rejected():
    d = _tmpdir()
    try:
        e = raises(ValueError, Store, d, 4096, 4000)
        assert "segment_bytes" in str(e)
        q = Store(d, 8192, 1024)
        raises(S.StoreError, q.append, b"x" * 9000)
        q.close()
    finally:
        _rmtree(d)


class _CountingFS(S.PosixFS):
    def __init__(self):
        self.renames = 0
        self.opens = {}

    def rename(self, a, b):
        self.renames += 1
        S.PosixFS.rename(a, b)

    def open(self, path, mode):
        self.opens[mode] = self.opens.get(mode, 0) + 1
        return S.PosixFS.open(path, mode)


def test_injected_fs_and_write_budget():
    d = _tmpdir()
    try:
        fs = _CountingFS()
        q = Store(d, 8192, 1024, fs=fs)
        base = fs.renames
        for i in range(12):
            q.append(_rec(i))
        assert fs.renames == base  # appends never rewrite anything
        q.ack(5)
        assert fs.renames == base + 1  # one atomic state write per ack call
        q.ack(5)
        assert fs.renames == base + 1  # nothing new acked: no write
        assert fs.opens.get("ab", 0) == 1  # one append handle for the active segment
        q.close()
    finally:
        _rmtree(d)


def test_damage_found_by_peek_is_skipped_and_not_pending():
    d = _tmpdir()
    try:
        q = Store(d, 8192, 4096)
        for i in range(3):
            q.append(_rec(i, 30))
        seg = d + "/" + _segs(d)[-1]
        with open(seg, "rb") as f:
            b = bytearray(f.read())
        b[HDR + 3] ^= 0x01  # record 1's payload, damaged while the store is open
        with open(seg, "wb") as f:
            f.write(b)
        assert q.peek(10) == []
        assert q.corrupt == 1
        assert q.pending() == 0  # a loop draining the queue does not spin on unreadable records
        assert q.append(b"ok") == 4
        assert q.peek(10) == [(4, b"ok")]
        q.close()
    finally:
        _rmtree(d)


def test_partial_write_never_hides_later_records():
    d = _tmpdir()
    try:
        fs = FullFlashFS(partial=True, spare="tmp")
        q = Store(d, 65536, 4096, fs=fs)
        for i in range(3):
            q.append(_rec(i))
        fs.fail = 1
        raises(OSError, q.append, _rec(99))  # half of it reached the file
        seqs = [q.append(_rec(i)) for i in range(3, 8)]
        got = q.peek(100)
        assert [p for _, p in got] == [_rec(i) for i in range(8)], got
        assert [s for s, _ in got][3:] == seqs
        q.close()
        q = Store(d, 65536, 4096)  # and after a reboot
        assert [p for _, p in q.peek(100)] == [_rec(i) for i in range(8)]
        q.close()
    finally:
        _rmtree(d)


def test_repeated_write_failures_lose_nothing_after_they_stop():
    d = _tmpdir()
    try:
        fs = FullFlashFS(partial=True, spare="tmp")
        q = Store(d, 65536, 4096, fs=fs)
        q.append(_rec(0))
        fs.fail = 3  # flash full for a while: three appends fail, each leaving half a record
        for i in range(3):
            raises(OSError, q.append, _rec(90 + i))
        for i in range(1, 6):
            q.append(_rec(i))
        got = q.peek(100)
        assert [p for _, p in got] == [_rec(i) for i in range(6)], got
        q.ack(got[2][0])  # deleting acked segments must not take unacked records with them
        q.close()
        q = Store(d, 65536, 4096)
        assert [p for _, p in q.peek(100)] == [_rec(i) for i in range(3, 6)]
        assert len(set(_segs(d))) == len(_segs(d))
        q.close()
    finally:
        _rmtree(d)
