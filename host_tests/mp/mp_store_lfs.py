# mp-heap: 8192K
# telelogger.store on LittleFS over a NOR-flash block device with the ESP32's geometry
# (host_tests/mp/lfsflash.py): the block device itself, the store's own tests on LittleFS, and a
# power cut at every write of a realistic run. LittleFS is a MicroPython vfs: on CPython these skip.
# The heap holds the recorded run (every write of it) and the flash images, not firmware (the
# module passes at 6144K, fails at 5120K on the 32-bit interpreter).
from mptest import Skip

try:
    import vfs
except ImportError:
    vfs = None

SEED = 20261201  # the power-cut run's seed; a failure names it (replay: micropython lfsflash.py SEED 300)
WHY = "design: LittleFS is a MicroPython vfs"


def _lf():
    if vfs is None or not hasattr(vfs, "VfsLfs2"):
        raise Skip(WHY)
    import lfsflash

    return lfsflash


def test_geometry_is_the_esp32_vfs_partition():
    L = _lf()
    import os

    dev = L.Flash()
    assert dev.ioctl(L.IOCTL_SIZE, 0) == 4096
    assert dev.ioctl(L.IOCTL_COUNT, 0) == 512  # 0x200000 bytes (partitions-4MiB.csv "vfs")
    L.Flash.mkfs(dev)
    dev.mount("/lfsg")
    try:
        st = os.statvfs("/lfsg")
        assert st[0] == 4096 and st[2] == 512, st
    finally:
        dev.umount()
    assert dev.overprog == 0


def test_program_clears_bits_erase_sets_and_both_are_counted():
    L = _lf()
    dev = L.Flash(8)
    buf = bytearray(4)
    dev.readblocks(3, buf, 100)
    assert buf == b"\xff\xff\xff\xff"
    assert dev.writeblocks(3, b"\x0f\xf0", 100) == 0
    assert dev.writeblocks(3, b"\xf3", 100) == 0  # over programmed data: only 1->0 reaches the cells
    dev.readblocks(3, buf, 99)
    assert buf == b"\xff\x03\xf0\xff", buf
    assert dev.overprog == 1 and dev.progs[3] == 2 and dev.erases[3] == 0
    # a read that crosses a block boundary
    dev.writeblocks(4, b"\x11", 0)
    dev.readblocks(3, buf, 4094)
    assert buf == b"\xff\xff\x11\xff", buf
    assert dev.ioctl(L.IOCTL_ERASE, 3) == 0
    dev.readblocks(3, buf, 100)
    assert buf == b"\xff\xff\xff\xff" and dev.erases[3] == 1 and dev.writes == 4


def test_cut_tears_that_write_and_every_later_operation_fails():
    L = _lf()
    dev = L.Flash(8)
    dev.cut_at = 2
    assert dev.writeblocks(1, b"\x00" * 64, 0) == 0
    assert dev.writeblocks(1, b"\x00" * 64, 64) == L.EIO
    b, off, keep, n = dev.torn
    assert (b, off, n) == (1, 64, 64) and 0 <= keep < 64
    raw = dev.blocks[1]
    assert raw[64 : 64 + keep] == b"\x00" * keep and raw[64 + keep : 128] == b"\xff" * (64 - keep)
    assert dev.readblocks(1, bytearray(4), 0) == L.EIO
    assert dev.writeblocks(2, b"\x00", 0) == L.EIO
    assert dev.ioctl(L.IOCTL_ERASE, 2) == L.EIO
    assert dev.writes == 2 and dev.progs[2] == 0
    # an erase cut half-way leaves the first part erased and the rest as it was
    dev = L.Flash(8)
    dev.writeblocks(5, b"\x00" * 4096, 0)
    dev.cut_at = 2
    assert dev.ioctl(L.IOCTL_ERASE, 5) == L.EIO
    keep = dev.torn[2]
    assert dev.blocks[5][:keep] == b"\xff" * keep and dev.blocks[5][keep:] == b"\x00" * (4096 - keep)


def test_a_cut_filesystem_raises_and_its_image_mounts_again():
    L = _lf()
    dev = L.Flash()
    L.Flash.mkfs(dev)
    dev.mount("/lfsk")
    try:
        f = open("/lfsk/a", "wb")
        f.write(b"x" * 100)
        f.flush()
        dev.cut_at = dev.writes + 1
        err = None
        try:
            f.write(b"y" * 5000)
            f.flush()
        except OSError as e:
            err = e
        assert err is not None and dev.dead
        try:
            f.close()
        except OSError:
            pass
    finally:
        dev.umount()
    again = L.Flash(base=dev.image())
    again.mount("/lfsk")
    try:
        with open("/lfsk/a", "rb") as f:
            assert f.read() == b"x" * 100  # the synced part survives, the torn append is gone
    finally:
        again.umount()


def test_replayed_image_is_the_image_of_a_run_cut_there():
    # the sweep rebuilds each cut image from the recorded writes; it must equal the flash of a run
    # that really lost power at that write (littlefs behaves the same up to the cut)
    L = _lf()
    full = L.Run(SEED, 60).run()
    total = len(full.log)
    for n in (full.first + 1, full.first + 7, (full.first + total) // 2, total - 3, total):
        cut = L.Run(SEED, 60)
        cut.dev.cut_at = n
        cut.dev.rng = L.Rng(SEED * 7919 + n)
        try:
            cut.run()
        except OSError:
            pass
        cut.dev.umount()
        assert cut.dev.dead and cut.dev.writes == n, (n, cut.dev.writes)
        img = L.replay(full.log, n - 1)
        L.apply(img, full.log[n - 1], cut.dev.torn[2])
        for b in range(L.BLOCKS):
            a = img.blocks.get(b, L._FF)
            c = cut.dev.blocks.get(b, L._FF)
            assert bytes(a) == bytes(c), "write %d: block %d differs" % (n, b)


def test_store_suite_passes_on_littlefs():
    # the store's own tests (host_tests/mp/mp_store.py), each in a directory on the flash
    L = _lf()
    import os

    import mp_store

    dev = L.Flash()
    L.Flash.mkfs(dev)
    dev.mount("/lfss")
    made = [0]

    def tmpdir():
        made[0] += 1
        d = "/lfss/t%d" % made[0]
        os.mkdir(d)
        return d

    old = mp_store._tmpdir
    mp_store._tmpdir = tmpdir
    failed = []
    try:
        for name in sorted(n for n in dir(mp_store) if n.startswith("test_")):
            try:
                getattr(mp_store, name)()
            except Skip:
                pass
            except Exception as e:
                failed.append("%s: %s %s" % (name, type(e).__name__, e))
    finally:
        mp_store._tmpdir = old
        dev.umount()
    assert made[0] >= 10, made  # the tests really ran here
    assert not failed, failed
    assert dev.overprog == 0 and sum(dev.erases) > 0


def test_power_cut_at_every_write_loses_nothing_stored():
    L = _lf()
    print("power-cut run seed %d (replay: micropython host_tests/mp/lfsflash.py %d 300)" % (SEED, SEED))
    run = L.Run(SEED, 300).run()
    # the run is realistic: acks, segment rotation, drop-oldest when full, reboots
    assert run.acks >= 5 and run.reboots >= 1 and run.dropped > 0, (run.acks, run.reboots, run.dropped)
    assert run.segs_max >= 3 and len(run.log) - run.first > 3000, (run.segs_max, len(run.log))
    checked, fails = L.sweep(run, 0, None, 10)  # every 10th cut: cut again at each write of the reopen
    assert checked == len(run.log) - run.first
    assert not fails, "%d of %d cuts failed, first: %s" % (len(fails), checked, fails[:3])
    assert run.dev.overprog == 0


def test_the_sweep_sees_a_store_that_does_not_sync():
    # a store whose appends are not flushed loses records at a cut: the sweep must say so
    L = _lf()
    from telelogger.store import PosixFS

    class NoSync(PosixFS):
        def sync(self, f):
            pass

    run = L.Run(SEED + 1, 80, fs=NoSync()).run()
    checked, fails = L.sweep(run)
    assert checked == len(run.log) - run.first > 20, (checked, len(run.log))
    assert fails and "is lost" in " ".join(fails), fails[:3]


def test_the_sweep_sees_a_corrupt_record():
    L = _lf()
    run = L.Run(SEED + 2, 40).run()
    n = len(run.log)
    ret, _, acked = run.state_at(n)
    last = max(s for s in ret if s > acked)  # still queued at the end
    run.payloads[last] = b"?" + run.payloads[last][1:]
    base = L.replay(run.log, n - 1).blocks
    msg = L.check_cut(run, base, n, 0)
    assert msg and ("seq %d corrupt" % last) in msg, msg


def test_power_cut_during_the_recovery_of_a_torn_record():
    # littlefs commits a file's new size at sync, so a cut append leaves no torn record for the
    # store to cut; one written whole but damaged (a cut on a FAT card, a bad byte) does, and the
    # store rewrites that segment at open (seg.tmp, rename). A cut at each write of that rewrite
    # must still leave every good record.
    L = _lf()
    import os

    from telelogger.store import Store

    run = L.Run(SEED + 3, 0)
    dev = run.dev
    L.Flash.mkfs(dev)
    dev.mount(L.MNT)
    q = Store(L.MNT + "/q", 16384, 4096)
    for i in range(12):
        p = L.payload(i + 1, 40 + 13 * i)
        seq = q.append(p)
        run.payloads[seq] = p
        run.marks.append((0, 0, "append", seq, 0))  # for state_at: returned, nothing acked
    q.close()
    seg = L.MNT + "/q/" + sorted(n for n in os.listdir(L.MNT + "/q") if n.endswith(".seg"))[-1]
    with open(seg, "ab") as f:
        f.write(b"\xa7\x40\x00\x0d\x00\x00\x00" + b"torn")  # header of seq 13, 64 bytes promised, 4 there
    dev.umount()
    run.marks.append((1 << 30, 1 << 30, "open", 0, 0))
    state = run.state_at(1 << 29)
    assert sorted(state[0]) == list(range(1, 13)) and state[2] == 0, state
    torn = dev.image()
    rec = L.Flash(dev.count, torn, log=[])
    assert L._judge(run, rec, state, "reopen") is None
    assert len(rec.log) >= 3, rec.log  # the rewrite: a new file, its data, the rename
    for k in range(1, len(rec.log) + 1):
        d2 = L.Flash(dev.count, torn)
        for i in range(k - 1):
            L.apply(d2, rec.log[i])
        op = rec.log[k - 1]
        L.apply(d2, op, L.Rng(k).below(L.BLOCK if op[1] is None else len(op[2])))
        msg = L._judge(run, d2, state, "recovery cut at write %d" % k)
        assert msg is None, msg
