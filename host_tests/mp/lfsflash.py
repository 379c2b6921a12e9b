# A NOR-flash block device with the ESP32's geometry for MicroPython's vfs.VfsLfs2, which counts
# programs and erases per block and can cut the power at any write; and the power-cut harness that
# runs telelogger.store.Store on it (host_tests/mp/mp_store_lfs.py, host_tests/test_store_powercut.py,
# scripts/benchlib/flash_wear.py). MicroPython only: CPython has no vfs.
#
# Geometry: MicroPython's ports/esp32/partitions-4MiB.csv (ESP32_GENERIC, 4 MiB flash) gives the
# "vfs" partition 0x200000 bytes at 0x200000; esp32.Partition reports 4096-byte blocks (the SPI
# flash sector, the erase unit), and the port mounts it as VfsLfs2 with the default readsize /
# progsize / lookahead (32). So: 512 blocks of 4096 bytes.
#
# Flash model: erased bytes are 0xFF, a program can only clear bits (new = old & data), an erase
# sets the block to 0xFF. Blocks are stored sparsely (a dict of the blocks ever written).
# dev = Flash(); Flash.mkfs(dev) ; fs = dev.mount("/lfs")  ...  dev.umount()
# dev.erases[b], dev.progs[b]: counts per block; dev.writes: programs + erases so far.
# dev.cut_at = N: the N-th write (1-based, counted over programs and erases) is torn, and every
# later read, program or erase fails with EIO, as after a power loss.
import vfs

BLOCK = 4096
BLOCKS = 512  # 0x200000 / 4096
EIO = -5
_FF = b"\xff" * BLOCK

# littlefs block-device ioctls (extmod/vfs.h MP_BLOCKDEV_IOCTL_*)
IOCTL_INIT, IOCTL_DEINIT, IOCTL_SYNC, IOCTL_COUNT, IOCTL_SIZE, IOCTL_ERASE = 1, 2, 3, 4, 5, 6


class Rng:
    """xorshift32: the same sequence on both runtimes for a seed, so a run is replayable."""

    def __init__(self, seed):
        self.s = (seed & 0xFFFFFFFF) or 0x9E3779B9

    def next(self):
        s = self.s
        s ^= (s << 13) & 0xFFFFFFFF
        s ^= s >> 17
        s ^= (s << 5) & 0xFFFFFFFF
        self.s = s
        return s

    def below(self, n):
        return self.next() % n if n > 0 else 0

    def between(self, lo, hi):
        return lo + self.below(hi - lo + 1)


class Flash:
    """readblocks/writeblocks/ioctl with littlefs's extended (offset) form. base: a dict
    {block: bytes} read under this device's own blocks (copy on write), e.g. a frozen image."""

    def __init__(self, blocks=BLOCKS, base=None, rng=None, log=None):
        self.count = blocks
        self.blocks = {}
        self.base = base or {}
        self.erases = [0] * blocks
        self.progs = [0] * blocks
        self.prog_bytes = 0
        self.writes = 0
        self.overprog = 0  # programs that would need a 0->1 bit change: littlefs must never do that
        self.cut_at = 0
        self.dead = False
        self.rng = rng or Rng(1)
        self.log = log  # a list: every write is appended as (block, off, bytes) or (block, None, None) for erase
        self.torn = None  # (block, off, kept bytes of the write, its length) of the torn write
        self.fs = None
        self.mnt = None

    # ---- image
    def _blk(self, b):
        d = self.blocks.get(b)
        if d is None:
            d = bytearray(self.base.get(b, _FF))
            self.blocks[b] = d
        return d

    def image(self):
        """A frozen {block: bytes} of the whole flash (base and own blocks)."""
        im = dict(self.base)
        for b, d in self.blocks.items():
            im[b] = bytes(d)
        return im

    # ---- block device protocol
    def readblocks(self, block, buf, off=0):
        if self.dead:
            return EIO
        n = len(buf)
        while n:
            d = self.blocks.get(block)
            if d is None:
                d = self.base.get(block, _FF)
            k = min(n, BLOCK - off)
            pos = len(buf) - n
            buf[pos : pos + k] = d[off : off + k]
            n -= k
            block += 1
            off = 0
        return 0

    def writeblocks(self, block, buf, off=None):
        if off is None:  # the old form (whole blocks, erase included): littlefs does not use it
            for i in range(len(buf) // BLOCK):
                if self.ioctl(IOCTL_ERASE, block + i):
                    return EIO
                r = self.writeblocks(block + i, memoryview(buf)[i * BLOCK : (i + 1) * BLOCK], 0)
                if r:
                    return r
            return 0
        if self._step():
            return EIO
        n = len(buf)
        if self.log is not None:
            self.log.append((block, off, bytes(buf)))
        if self.writes == self.cut_at:
            keep = self.rng.below(n)  # a prefix of the bytes reached the cells
            self.torn = (block, off, keep, n)
            self._prog(block, off, memoryview(buf)[:keep])
            self.dead = True
            return EIO
        self._prog(block, off, buf)
        return 0

    def _prog(self, block, off, data):
        d = self._blk(block)
        n = len(data)
        self.progs[block] += 1
        self.prog_bytes += n
        if d[off : off + n] == _FF[:n]:  # the usual case: programming erased cells
            d[off : off + n] = data
            return
        for i in range(n):
            o = d[off + i]
            v = data[i]
            if o & v != v:
                self.overprog += 1
            d[off + i] = o & v

    def _step(self):
        if self.dead:
            return True
        self.writes += 1
        return False

    def _erase(self, block, upto=BLOCK):
        d = self._blk(block)
        d[:upto] = _FF[:upto]
        self.erases[block] += 1

    def ioctl(self, op, arg):
        if op == IOCTL_COUNT:
            return self.count
        if op == IOCTL_SIZE:
            return BLOCK
        if op == IOCTL_ERASE:
            if self._step():
                return EIO
            if self.log is not None:
                self.log.append((arg, None, None))
            if self.writes == self.cut_at:  # half an erase: the first part of the block is erased
                keep = self.rng.below(BLOCK)
                self.torn = (arg, None, keep, BLOCK)
                self._erase(arg, keep)
                self.dead = True
                return EIO
            self._erase(arg)
            return 0
        if op == IOCTL_SYNC:
            return EIO if self.dead else 0
        return 0  # INIT, DEINIT

    # ---- vfs helpers
    @staticmethod
    def mkfs(dev):
        vfs.VfsLfs2.mkfs(dev)

    def mount(self, point, mtime=False):
        """Mounts the device at `point` as the ESP32 port does (VfsLfs2, default sizes) -> vfs object.
        mtime=False by default: the timestamp attribute would make a run depend on the clock."""
        self.fs = vfs.VfsLfs2(self, mtime=mtime)
        try:
            vfs.umount(point)  # left mounted by a run that lost power
        except OSError:
            pass
        vfs.mount(self.fs, point)
        self.mnt = point
        return self.fs

    def umount(self):
        if self.mnt is not None:
            try:
                vfs.umount(self.mnt)
            except OSError:
                pass
            self.mnt = None
            self.fs = None

    def stats(self):
        used = 0
        mx = 0
        for e in self.erases:
            if e:
                used += 1
            if e > mx:
                mx = e
        return {"writes": self.writes, "erases": sum(self.erases), "progs": sum(self.progs),
                "prog_bytes": self.prog_bytes, "blocks_erased": used, "max_erases": mx, "overprog": self.overprog}


def replay(log, upto, base=None, blocks=BLOCKS):
    """A device holding `base` with the first `upto` writes of `log` applied whole."""
    dev = Flash(blocks, base)
    for i in range(upto):
        apply(dev, log[i])
    return dev


def apply(dev, op, keep=None):
    """Applies one logged write to dev (whole, or torn: keep = bytes/erased prefix that landed)."""
    b, off, data = op
    if off is None:
        dev._erase(b, BLOCK if keep is None else keep)
    else:
        dev._prog(b, off, data if keep is None else data[:keep])


# ------------------------------------------------------------------ the store's power-cut run
MNT = "/lfsq"  # where the recording run mounts the flash
CHK = "/lfsc"  # where each cut image is mounted to be checked


def payload(seq, n):
    """Record bytes of a given length whose content depends on its seq (a swapped or stale record shows)."""
    b = ("<%d>" % seq).encode()
    return (b * (n // len(b) + 1))[:n]


class Run:
    """Drives telelogger.store.Store on a mounted Flash as the telelogger does: records of 40..200
    bytes, a batch of up to 20 peeked and acked as the broker's PUBACK arrives, outages in which
    the queue fills and drops the oldest, clean reboots (close, unmount, mount, reopen). Each store
    call is bracketed by marks (writes before, writes after, kind, seq, payload, acked after) so a
    cut at any write can be judged afterwards."""

    def __init__(self, seed, records=300, max_bytes=16384, segment_bytes=4096, blocks=BLOCKS, fs=None):
        self.seed = seed
        self.fs = fs  # the store's fs object (None: telelogger.store.PosixFS, the device's)
        self.first = 0  # writes made by mkfs (a cut there is a blank flash, formatted at boot)
        self.reboots = 0
        self.acks = 0
        self.dropped = 0
        self.segs_max = 0  # most segment files seen at a reboot
        self.rng = Rng(seed)
        self.records = records
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self.log = []
        self.dev = Flash(blocks, log=self.log)
        self.marks = []
        self.payloads = {}
        self.q = None

    def _mark(self, w0, kind, seq=0):
        self.marks.append((w0, self.dev.writes, kind, seq, self.q.acked if self.q else 0))

    def _open(self):
        from telelogger.store import Store

        w0 = self.dev.writes
        self.dev.mount(MNT)
        self.q = Store(MNT + "/q", self.max_bytes, self.segment_bytes, self.fs)
        self._mark(w0, "open")

    def _close(self):
        import os

        self.segs_max = max(self.segs_max, len([n for n in os.listdir(MNT + "/q") if n.endswith(".seg")]))
        w0 = self.dev.writes
        self.q.close()
        self.dev.umount()
        self._mark(w0, "close")

    def run(self):
        Flash.mkfs(self.dev)
        self.first = self.dev.writes
        self._open()
        r = self.rng
        outage = 0
        since_ack = 0
        batch = r.between(5, 20)
        for i in range(self.records):
            n = r.between(40, 200)
            seq = self.q.next_seq
            p = payload(seq, n)
            self.payloads[seq] = p
            w0 = self.dev.writes
            got = self.q.append(p)
            assert got == seq, (got, seq)
            self._mark(w0, "append", seq)
            since_ack += 1
            if i == self.records // 3:
                outage = self.max_bytes // 100  # at least one outage that fills the queue
            if outage:
                outage -= 1
            elif r.below(60) == 0:
                outage = r.between(60, 160)  # long enough to fill the queue: drop-oldest
            elif since_ack >= batch:
                ents = self.q.peek(20)
                if ents:
                    w0 = self.dev.writes
                    self.q.ack(ents[-1][0])
                    self._mark(w0, "ack", ents[-1][0])
                    self.acks += 1
                since_ack = 0
                batch = r.between(5, 20)
            if r.below(90) == 0 or i == self.records * 2 // 3:
                self._close()
                self._open()
                self.reboots += 1
        self.dropped = self.q.dropped
        self._close()
        return self

    def state_at(self, n):
        """What the store had promised when write n (1-based) was cut: (returned {seq: payload},
        seq of the append in progress or 0, acked after the call in progress)."""
        ret = {}
        cur = 0
        acked = 0
        for w0, w1, kind, seq, ack in self.marks:
            if w1 < n:
                if kind == "append":
                    ret[seq] = self.payloads[seq]
            else:
                if w0 < n and kind == "append":
                    cur = seq
                acked = ack
                break
        return ret, cur, acked


def check_cut(run, base, n, keep, nested=False):
    """Mounts base (the image before write n) with write n torn (keep bytes landed), reopens the
    store and judges it. nested: the power is also cut at each write that reopening makes (its
    recovery: cutting a torn record, rewriting state), and each of those images is judged too.
    Returns None or a message saying what is wrong."""
    dev = Flash(run.dev.count, base)
    apply(dev, run.log[n - 1], keep)
    state = run.state_at(n)
    where = "cut at write %d" % n
    if not nested:
        return _judge(run, dev, state, where)
    torn = dev.image()
    dev = Flash(run.dev.count, torn, log=[])
    msg = _judge(run, dev, state, where)
    if msg:
        return msg
    again = dev.log
    for k in range(1, len(again) + 1):
        d2 = Flash(run.dev.count, torn)
        for i in range(k - 1):
            apply(d2, again[i])
        op = again[k - 1]
        apply(d2, op, Rng(run.seed * 104729 + n * 131 + k).below(BLOCK if op[1] is None else len(op[2])))
        msg = _judge(run, d2, state, "%s, then at write %d of the reopen" % (where, k))
        if msg:
            return msg
    return None


def _judge(run, dev, state, where):
    from telelogger.store import Store

    ret, cur, acked = state
    try:
        dev.mount(CHK)
    except OSError as e:
        return "%s: the filesystem does not mount (%r)" % (where, e)
    try:
        try:
            q = Store(CHK + "/q", run.max_bytes, run.segment_bytes)
        except OSError as e:
            return "%s: the store does not open (%r)" % (where, e)
        got = q.peek(100000)
        prev = 0
        seen = {}
        for seq, p in got:
            if seq <= prev:
                return "%s: seq %d after %d" % (where, seq, prev)
            prev = seq
            want = run.payloads.get(seq) if (seq in ret or seq == cur) else None
            if want is None:
                return "%s: seq %d was never stored" % (where, seq)
            if p != want:
                return "%s: seq %d corrupt (%d bytes, want %d)" % (where, seq, len(p), len(want))
            seen[seq] = 1
        for seq in ret:
            if seq > acked and seq not in seen:
                return "%s: seq %d (stored, not acked) is lost" % (where, seq)
        if q.corrupt:
            return "%s: %d damaged records" % (where, q.corrupt)
        top = max(ret) if ret else 0
        if q.next_seq <= top:
            return "%s: next seq %d reuses a stored seq (%d)" % (where, q.next_seq, top)
        q.close()
    finally:
        dev.umount()
    return None


def positions(first, total, sample, seed):
    """Every write first+1..total, or a seeded sample of `sample` of them (sorted)."""
    if not sample or sample >= total - first:
        return list(range(first + 1, total + 1))
    r = Rng(seed ^ 0x5EED)
    pick = {}
    while len(pick) < sample:
        pick[first + 1 + r.below(total - first)] = 1
    return sorted(pick)


def sweep(run, sample=0, out=None, nested=0):
    """Cuts the recorded run at each chosen write -> (checked, [failure messages]). nested=K: at
    every K-th chosen write, also cut the power again at each write of the reopen after it."""
    pos = positions(run.first, len(run.log), sample, run.seed)
    live = Flash(run.dev.count)
    done = 0
    fails = []
    for j, n in enumerate(pos):
        while done < n - 1:
            apply(live, run.log[done])
            done += 1
        op = run.log[n - 1]
        size = BLOCK if op[1] is None else len(op[2])
        keep = Rng(run.seed * 7919 + n).below(size)
        msg = check_cut(run, live.blocks, n, keep, nested and j % nested == 0)
        if msg:
            fails.append(msg + " (seed %d)" % run.seed)
            if out:
                out(fails[-1])
    return len(pos), fails


def main(argv):
    """micropython lfsflash.py SEED RECORDS [SAMPLE [NESTED]]: records a run, cuts it (at SAMPLE
    seeded positions, 0 = every write; every NESTED-th cut also cut again during the reopen),
    prints a summary line."""
    seed = int(argv[1])
    records = int(argv[2])
    sample = int(argv[3]) if len(argv) > 3 else 0
    nested = int(argv[4]) if len(argv) > 4 else 10
    print("POWERCUT seed=%d records=%d" % (seed, records))
    run = Run(seed, records).run()
    st = run.dev.stats()
    checked, fails = sweep(run, sample, print, nested)
    print("POWERCUT_RESULT seed=%d writes=%d erases=%d checked=%d failed=%d overprog=%d acks=%d reboots=%d dropped=%d" % (
        seed, st["writes"], st["erases"], checked, len(fails), st["overprog"], run.acks, run.reboots, run.dropped))
    return len(fails)


if __name__ == "__main__":
    import sys

    sys.exit(1 if main(sys.argv) else 0)
