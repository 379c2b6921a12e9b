# Opening the flash queue (telelogger/store.py; layout and recovery rules: telelogger/FORMAT.md): the
# folder is scanned, the state read (or its temporary copy after a crash mid-replace), a leftover
# segment copy removed, acked segments deleted and a torn last record cut. Runs once per boot:
# Store() imports this module and forgets it again; it passes the file names and the header size
# (store.py's constants: one home), so this module imports nothing of the store's.
from binascii import crc32


def read_state(q, name):
    """(acked, dropped) from the state file `name`, or None when it is missing or damaged."""
    try:
        with q.fs.open(q._p(name), "rb") as f:
            b = f.read()
    except OSError:
        return None
    parts = b.split()
    if len(parts) != 3:
        return None
    try:
        acked = int(parts[0])
        dropped = int(parts[1])
        c = int(parts[2], 16)
    except ValueError:
        return None
    if crc32(parts[0] + b" " + parts[1]) & 0xFFFFFFFF != c:
        return None
    return acked, dropped


def open_store(q, root, max_bytes, segment_bytes, fs, names):
    """Store.__init__: the fields of Store `q`, read from its folder (see the top of this file).
    names: store.py's (HDR, SEG_SUFFIX, SEG_TMP, STATE, STATE_TMP)."""
    hdr, seg_suffix, seg_tmp, state, state_tmp = names
    if segment_bytes * 2 > max_bytes:
        raise ValueError("segment_bytes (%d) must be at most max_bytes / 2 (%d)" % (segment_bytes, max_bytes // 2))
    q.root = root.rstrip("/") or "/"
    q.max_bytes = max_bytes
    q.segment_bytes = segment_bytes
    q.fs = fs
    q.acked = 0  # every seq <= acked is delivered (or dropped)
    q.dropped = 0  # records dropped unsent because the queue was full (persisted)
    q.corrupt = 0  # records found damaged when read (not persisted)
    q.recovered = 0  # torn bytes cut at open
    q._segs = []  # [first_seq, size] oldest first; the last one is the active segment
    q._f = None  # open append handle of the active segment
    q._next = 1
    q._cursor = None  # (first_seq of segment, offset, seq at offset) for peek
    q._bad = {}  # first_seq -> offset of a damaged record found by peek (read stops there)
    q._roll = False  # a write failed in the active segment: the next append starts a new one
    try:
        names = fs.listdir(q.root)
    except OSError:
        fs.mkdir(q.root)
        names = []
    st = read_state(q, state)
    if st is None:
        st = read_state(q, state_tmp)  # crash between "remove state" and rename
    segs = []
    for n in names:
        if n.endswith(seg_suffix) and len(n) == 10 + len(seg_suffix) and n[:10].isdigit():
            segs.append(int(n[:10]))
        elif n == seg_tmp:
            fs.remove(q._p(n))
    segs.sort()
    if st is not None:
        q.acked, q.dropped = st
    elif segs:
        q.acked = segs[0] - 1
    q._segs = [[s, fs.stat(q._p(q._seg_name(s)))[6]] for s in segs]
    last_seq = q.acked
    if q._segs:
        last_seq = max(last_seq, recover_last(q, hdr, seg_tmp))
    q._next = last_seq + 1
    q._delete_acked()
    if st is None:
        q._write_state()


def recover_last(q, hdr, seg_tmp):
    """Scans the last segment; cuts a torn tail. Returns the last valid seq (or first-1)."""
    first, size = q._segs[-1]
    name = q._p(q._seg_name(first))
    good = 0
    last = first - 1
    buf = bytearray(hdr)
    with q.fs.open(name, "rb") as f:
        while True:
            r = q._read_rec(f, good, buf, last)
            if r is None:
                break
            last = r[0]
            good += hdr + len(r[1])
    if good < size:
        q.recovered += size - good
        if good == 0:
            q.fs.remove(name)
            q._segs.pop()
            return last
        tmp = q._p(seg_tmp)
        with q.fs.open(name, "rb") as src, q.fs.open(tmp, "wb") as dst:
            left = good
            while left:
                chunk = src.read(min(left, 512))
                if not chunk:
                    break
                dst.write(chunk)
                left -= len(chunk)
            q._sync(dst)
        q.fs.rename(tmp, name)
        q._segs[-1][1] = good
    return last
