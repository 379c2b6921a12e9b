# mp-heap: 1024K  (the LittleFS partition fake keeps its 64 blocks of 4 KB, copied on write, in RAM)
# telelogger.assembly.flash_budget: queue.max_bytes (+ the AT log's two files) checked against the
# queue's filesystem at boot, clamped with one warning naming the key when it does not fit. On
# MicroPython against a real LittleFS (host_tests/mp/lfsflash.py, 4 KB blocks) that the clamped
# queue then fills without running out of space; on both runtimes against a stated statvfs.
import os

from mptest import Skip
from telelogger.assembly import flash_budget
from telelogger.store import Store

FLASH_MARGIN_BLOCKS = 16  # assembly._FLASH_MARGIN_BLOCKS (a const: no name on the device)

try:
    import vfs
except ImportError:
    vfs = None


def _tmpdir():
    d = "/tmp/mpasm-" + "".join("%02x" % b for b in os.urandom(6))
    os.mkdir(d)
    return d


def _rm(d):
    for n in os.listdir(d):
        p = d + "/" + n
        if os.stat(p)[0] & 0x4000:
            _rm(p)
        else:
            os.remove(p)
    os.rmdir(d)


def _cfg(qmax=262144, seg=16384, at_log="", at_max=65536):
    return {"queue": {"max_bytes": qmax, "segment_bytes": seg}, "debug": {"at_log": at_log, "at_log_max": at_max}}


def _vfs(bsize, free):
    # os.statvfs's tuple: (f_bsize, f_frsize, f_blocks, f_bfree, f_bavail, ...)
    return lambda path: (bsize, bsize, 512, free, free, 0, 0, 0, 0, 255)


def _write(path, n):
    with open(path, "wb") as f:
        f.write(b"\x00" * n)


def test_a_budget_that_fits_is_left_alone():
    d = _tmpdir()
    try:
        assert flash_budget(_cfg(), d + "/queue", _vfs(4096, 512)) == (262144, 0, [])
        assert flash_budget(_cfg(at_log=d + "/at.log"), d + "/queue", _vfs(4096, 512)) == (262144, 65536, [])
        # the host's own filesystem through os.statvfs (a temp folder has room for the default)
        assert flash_budget(_cfg(), d + "/queue") == (262144, 0, [])
    finally:
        _rm(d)


def test_queue_clamped_to_free_plus_held_less_the_margin():
    d = _tmpdir()
    try:
        q = d + "/queue"
        os.mkdir(q)
        _write(q + "/0000000001.seg", 10000)  # already queued: reclaimable by the queue itself
        _write(q + "/state", 24)
        held = 4 * 4096  # in whole blocks: 3 + 1
        usable = 40 * 4096 + held - FLASH_MARGIN_BLOCKS * 4096
        qmax, amax, notes = flash_budget(_cfg(), q, _vfs(4096, 40))
        assert (qmax, amax) == (usable, 0)
        assert len(notes) == 1 and notes[0].startswith("queue.max_bytes: 262144 configured, %d usable" % usable), notes
        assert "margin %d" % (FLASH_MARGIN_BLOCKS * 4096) in notes[0] and notes[0].endswith("using %d" % usable)
    finally:
        _rm(d)


def test_the_at_log_counts_twice_and_is_clamped_after_the_queue():
    d = _tmpdir()
    try:
        q = d + "/queue"
        alog = d + "/at.log"
        _write(alog, 3000)
        _write(alog + ".1", 5000)
        usable = 60 * 4096 + 3 * 4096 - FLASH_MARGIN_BLOCKS * 4096
        qmax, amax, notes = flash_budget(_cfg(at_log=alog, at_max=32768), q, _vfs(4096, 60))
        assert (qmax, amax) == (usable - 65536, 32768) and len(notes) == 1
        assert "2 x debug.at_log_max" in notes[0] and "%d usable" % (usable - 65536) in notes[0], notes
        # too little for the queue's minimum (2 segments) and the AT log: the AT log gives way
        qmax, amax, notes = flash_budget(_cfg(seg=16384, at_log=alog, at_max=65536), q, _vfs(4096, 20))
        usable = 20 * 4096 + 3 * 4096 - FLASH_MARGIN_BLOCKS * 4096
        assert qmax == 32768 and amax == 0 and len(notes) == 2, (qmax, amax, notes)
        assert "the minimum, 2 x queue.segment_bytes" in notes[0]
        assert notes[1].startswith("debug.at_log_max: 65536 configured, %d usable" % ((usable - 32768) // 2))
        assert notes[1].endswith("AT log off")
    finally:
        _rm(d)


def test_no_statvfs_answer_leaves_the_budget_as_configured():
    def broken(path):
        raise OSError(19)

    assert flash_budget(_cfg(), "/nowhere/queue", broken) == (262144, 0, [])


def _fill(root, qmax):
    s = Store(root, qmax, 8192)
    rec = b"r" * 300
    d0 = s.dropped
    for _ in range(2 * qmax // 300):  # twice the queue: the oldest segments are dropped, flash never full
        s.append(rec)
    assert s.dropped > d0 and s.size() <= qmax
    s.close()


def test_on_a_small_littlefs_the_clamped_queue_fills_without_running_out_of_space():
    if vfs is None or not hasattr(vfs, "VfsLfs2"):
        raise Skip("design: LittleFS is a MicroPython vfs")
    import lfsflash

    dev = lfsflash.Flash(64)  # a 256 KB partition: the default 256 KB queue cannot fit
    lfsflash.Flash.mkfs(dev)
    dev.mount("/lfsb")
    try:
        root = "/lfsb/queue"
        qmax, amax, notes = flash_budget(_cfg(seg=8192), root)
        st = os.statvfs("/lfsb")
        assert qmax == st[4] * 4096 - FLASH_MARGIN_BLOCKS * 4096 and len(notes) == 1, (qmax, st, notes)
        assert notes[0].startswith("queue.max_bytes: 262144 configured, %d usable" % qmax)
        _fill(root, qmax)
        # at the next boot the queue's own files count as usable: about the same budget again (less
        # the blocks the directory's metadata took), and the queue fills again without running out
        again = flash_budget(_cfg(seg=8192), root)[0]
        assert qmax - 4 * 4096 <= again <= qmax, (again, qmax, os.statvfs("/lfsb"), [(n, os.stat(root + "/" + n)[6]) for n in os.listdir(root)])
        _fill(root, again)
    finally:
        dev.umount()
