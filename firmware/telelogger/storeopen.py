# Opening the flash queue (telelogger/store.py; layout and recovery rules: telelogger/FORMAT.md): the
# folder is scanned, the state read (or its temporary copy after a crash mid-replace), a leftover
# segment copy removed, acked segments deleted and a torn last record cut. Runs once per boot:
# Store() imports this module and forgets it again; it passes the file names and the header size
# (store.py's constants: one home), so this module imports nothing of the store's. Two functions, not
# more (each function name and parameter name is an interned name for good), not one (a function's
# bytecode is one allocation: the boot's heap has room for two halves where one 785-byte piece failed).
from binascii import crc32


def open_store(self, root, max_bytes, segment_bytes, fs, names):
    """Store.__init__: the fields of the Store `self`, read from its folder (see the top of this
    file). names: store.py's (HDR, SEG_SUFFIX, SEG_TMP, STATE, STATE_TMP)."""
    hdr, seg_suffix, seg_tmp, state, state_tmp = names
    if segment_bytes * 2 > max_bytes:
        raise ValueError("segment_bytes (%d) must be at most max_bytes / 2 (%d)" % (segment_bytes, max_bytes // 2))
    self.root = root.rstrip("/") or "/"
    self.max_bytes = max_bytes
    self.segment_bytes = segment_bytes
    self.fs = fs
    self.acked = 0  # every seq <= acked is delivered (or dropped)
    self.dropped = 0  # records dropped unsent because the queue was full (persisted)
    self.corrupt = 0  # records found damaged when read (not persisted)
    self.recovered = 0  # torn bytes cut at open
    self._segs = []  # [first_seq, size] oldest first; the last one is the active segment
    self._f = None  # open append handle of the active segment
    self.next_seq = 1  # the seq the next append gets (read by tools and tests; only the store writes it)
    self._cursor = None  # (first_seq of segment, offset, seq at offset) for peek
    self._bad = {}  # first_seq -> offset of a damaged record found by peek (read stops there)
    self._roll = False  # a write failed in the active segment: the next append starts a new one
    try:
        names = fs.listdir(self.root)
    except OSError:
        fs.mkdir(self.root)
        names = []
    # the state: (acked, dropped) from the state file, else from its temporary copy (a crash between
    # "remove state" and rename), None when both are missing or damaged
    st = None
    for n in (state, state_tmp):
        try:
            with fs.open(self._p(n), "rb") as f:
                b = f.read()
        except OSError:
            continue
        parts = b.split()
        if len(parts) != 3:
            continue
        try:
            acked = int(parts[0])
            dropped = int(parts[1])
            c = int(parts[2], 16)
        except ValueError:
            continue
        if crc32(parts[0] + b" " + parts[1]) & 0xFFFFFFFF == c:
            st = acked, dropped
            break
    segs = []
    for n in names:
        if n.endswith(seg_suffix) and len(n) == 10 + len(seg_suffix) and n[:10].isdigit():
            segs.append(int(n[:10]))
        elif n == seg_tmp:
            fs.remove(self._p(n))
    segs.sort()
    if st is not None:
        self.acked, self.dropped = st
    elif segs:
        self.acked = segs[0] - 1
    self._segs = [[s, fs.stat(self._p(s))[6]] for s in segs]
    self.next_seq = _tail(self, fs, hdr, seg_tmp) + 1
    self.ack(0)  # the acked segments deleted (no state written: nothing newly acked)
    if st is None:
        self._write_state()


def _tail(self, fs, hdr, seg_tmp):
    """open_store's scan of the last segment: a torn tail cut. -> the last seq in the queue."""
    last_seq = self.acked
    if self._segs:
        # the last segment scanned; a torn tail cut (the last valid seq, or first-1)
        first, size = self._segs[-1]
        name = self._p(first)
        good = 0
        last = first - 1
        buf = bytearray(hdr)
        with fs.open(name, "rb") as f:
            while True:
                r = self._read_rec(f, good, buf, last)
                if r is None:
                    break
                last = r[0]
                good += hdr + len(r[1])
        if good < size:
            self.recovered += size - good
            if good == 0:
                fs.remove(name)
                self._segs.pop()
            else:
                tmp = self._p(seg_tmp)
                with fs.open(name, "rb") as src, fs.open(tmp, "wb") as dst:
                    left = good
                    while left:
                        chunk = src.read(min(left, 512))
                        if not chunk:
                            break
                        dst.write(chunk)
                        left -= len(chunk)
                    self._sync(dst)
                fs.rename(tmp, name)
                self._segs[-1][1] = good
        last_seq = max(last_seq, last)
    return last_seq
