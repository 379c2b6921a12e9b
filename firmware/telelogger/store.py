# Bounded store-and-forward queue on flash (layout and recovery rules: telelogger/FORMAT.md).
#
# q = Store("/queue", max_bytes=262144, segment_bytes=16384)
# seq = q.append(record_bytes)      # durable when it returns (written + flushed)
# q.peek(20) -> [(seq, bytes)]      # oldest first, not yet acknowledged
# q.ack(seq)                        # everything <= seq is delivered; whole segments are deleted
#
# Files in root: "<first seq, 10 digits>.seg" (append-only segments of records) and "state"
# (acked-up-to seq + dropped counter, replaced atomically by writing "state.tmp" then rename).
# Record on flash: magic 0xA7, u16 length, u32 seq, u32 CRC32 (header bytes 0..6 + payload),
# payload. Segments are never rewritten, except once at open to cut a torn last record.
# Opening the queue (scanning the folder, reading the state, cutting a torn tail) runs once per
# boot: telelogger/storeopen.py, imported by Store() and forgotten again.
from binascii import crc32  # every port we run on has it (ESP32, unix, CPython); unsigned on all of them
import os

from core.compat import const
from core.errors import lookup
from telelogger.tasks import text

# const(): inlined, no name on the heap. The record header (FORMAT.md): magic, u16 length, u32 seq, u32 CRC32.
_MAGIC = const(0xA7)
_HDR = const(11)
_T_RECORD_SIZE = const(21)  # the error text (telelogger/texts.py, looked up when raised: tasks.text)
_MAX_RECORD = const(8192)  # records are a few hundred bytes; the length field allows 65535
# The file names in root (a constant tuple: its items are heap strs, or the names that exist already when this
# module loads, and intern none; a string split at import kept that string too): the segments' suffix, a
# segment's copy while its torn tail is cut, the state and its replacement copy.
_FILES = (".seg", "seg.tmp", "state", "state.tmp")


# A record too large to store (append). ValueError itself, not a class of its own (a class costs ~140 bytes of
# resident heap): no except site tells it apart (the loop counts any failed append).
StoreError = ValueError


class PosixFS:
    """The os-module subset the store uses (open, listdir, remove, rename, stat, mkdir, sync(f)).
    Tests pass their own object with the same methods (e.g. to inject faults); the os functions
    are the methods themselves (PosixFS.open(path, mode), no Python wrapper on the heap)."""

    open = staticmethod(open)
    listdir = staticmethod(os.listdir)
    remove = staticmethod(os.remove)
    rename = staticmethod(os.rename)
    stat = staticmethod(os.stat)
    mkdir = staticmethod(os.mkdir)

    def sync(self, f):
        """Make written data durable. flush() is a sync on MicroPython (littlefs, FAT, unix: no
        os.fsync there); CPython also needs fsync."""
        f.flush()
        if hasattr(os, "fsync"):
            os.fsync(f.fileno())


class Store:
    # Fields set by telelogger/storeopen.py's open_store (documented there) and not assigned here
    # again, declared for the type checker (pyright) only: a bare annotation compiles to nothing on
    # MicroPython, and so does this `if 1 - 1` (mpy-cross folds it to a constant false) while pyright
    # still reads the import (typing.TYPE_CHECKING: no such module on MicroPython). Quoted: CPython
    # evaluates class annotations.
    if 1 - 1:
        from typing import Any
    root: str
    max_bytes: int
    segment_bytes: int
    fs: "Any"  # PosixFS or a test's object with the same methods (PosixFS.open's type: text modes only)
    recovered: int
    next_seq: int
    _segs: list
    _bad: dict

    def __init__(self, root, max_bytes, segment_bytes, fs=None):
        # the fields (documented in telelogger/storeopen.py) and the folder's contents: boot only,
        # imported for the call and forgotten again once the queue is open
        # (__name__ + "open": telelogger.storeopen, no str constant of that name here)
        lookup(__name__ + "open", "open_store", self, root, max_bytes, segment_bytes, fs or PosixFS(),
               (_HDR,) + _FILES)

    # ------------------------------------------------------------ paths and state
    def _p(self, name):
        """The path of file `name` in root; an int: the segment whose first seq it is."""
        if isinstance(name, int):
            name = "%010d%s" % (name, _FILES[0])
        return self.root + "/" + name

    def _write_state(self):
        body = ("%d %d" % (self.acked, self.dropped)).encode()
        data = body + (" %08x\n" % crc32(body)).encode()
        tmp = self._p(_FILES[3])
        with self.fs.open(tmp, "wb") as f:
            f.write(data)
            self._sync(f)
        try:
            self.fs.rename(tmp, self._p(_FILES[2]))
        except OSError:  # file systems whose rename does not replace: remove then rename
            self.fs.remove(self._p(_FILES[2]))
            self.fs.rename(tmp, self._p(_FILES[2]))

    def _sync(self, f):
        sync = getattr(self.fs, "sync", None)
        if sync is not None:
            sync(f)
        else:
            f.flush()

    def _read_rec(self, f, off, buf, last):
        """Reads the record at `off` of open file f into header buffer `buf` -> (seq, payload) or
        None (end or damage; a seq not after `last` is damage too)."""
        f.seek(off)
        n = f.readinto(buf)
        if n != _HDR or buf[0] != _MAGIC:
            return None
        ln = buf[1] | (buf[2] << 8)
        seq = int.from_bytes(bytes(buf[3:7]), "little")
        payload = f.read(ln)
        if payload is None or len(payload) != ln or seq <= last:
            return None
        c = crc32(payload, crc32(memoryview(buf)[:7]))
        if c != int.from_bytes(bytes(buf[7:11]), "little"):
            return None
        return seq, payload

    # ------------------------------------------------------------ API
    def pending(self):
        return self.next_seq - 1 - self.acked

    def size(self):
        t = 0
        for s in self._segs:
            t += s[1]
        return t

    def append(self, record, sync=True):
        """Store one record -> its seq; durable when it returns. sync=False leaves it in the file's
        buffer until sync() (the loop writes a window of records with one flash sync: each sync of an
        append costs LittleFS about one block erase). peek() must not run before that sync: on LittleFS
        a new read handle does not see a writer's unsynced data."""
        n = len(record)
        if n > _MAX_RECORD:
            raise StoreError(text(_T_RECORD_SIZE) % (n, _MAX_RECORD))
        need = _HDR + n
        segs = self._segs
        while segs and self.size() + need > self.max_bytes:
            if len(segs) == 1:
                self.close()
            self._drop_oldest()
        if self._roll and segs and segs[-1][1] == 0:
            # the failed write was the first of its segment: start that file over (nothing good in it)
            self.close()
            self._f = self.fs.open(self._p(self._segs[-1][0]), "wb")
            self._roll = False
        elif not segs or self._roll or (segs[-1][1] > 0 and segs[-1][1] + need > self.segment_bytes):
            self.close()
            self._roll = False
            segs.append([self.next_seq, 0])
        seg = segs[-1]
        if self._f is None:
            self._f = self.fs.open(self._p(seg[0]), "ab")
        seq = self.next_seq
        h = bytearray(_HDR)  # the header (FORMAT.md): magic, u16 length, u32 seq, u32 CRC of bytes 0..6 + payload
        h[0] = _MAGIC
        h[1] = n & 0xFF
        h[2] = n >> 8
        h[3:7] = seq.to_bytes(4, "little")
        h[7:11] = crc32(record, crc32(memoryview(h)[:7])).to_bytes(4, "little")
        try:
            self._f.write(h + record)  # one write: header and payload land together
            if sync:
                self._sync(self._f)
        except OSError:
            # flash full or a write error: part of the record may be in the file. A reader stops at a
            # damaged record, so nothing may follow it in this segment: the next record starts a new one.
            self._roll = True
            try:
                self.close()
            except OSError:
                self._f = None
            raise
        seg[1] += need
        self.next_seq = seq + 1
        return seq

    def sync(self):
        """Make every record appended with sync=False durable."""
        if self._f is not None:
            self._sync(self._f)

    def close(self):
        """Closes the active segment's append handle (the next append opens it again)."""
        if self._f is not None:
            self._f.close()
            self._f = None

    def _drop_oldest(self):
        """Full: drops the oldest segment, delivered or not (counted in .dropped). A method of its own:
        scripts/soak.py's TrackStore overrides it to record what was dropped."""
        first = self._segs[0][0]
        end = self._segs[1][0] - 1 if len(self._segs) > 1 else self.next_seq - 1
        lost = end - max(first - 1, self.acked)
        if lost > 0:
            self.dropped += lost
        if end > self.acked:
            self.acked = end
        self._write_state()  # state first: a crash before the remove leaves an acked segment
        self.fs.remove(self._p(first))
        self._segs.pop(0)
        self._bad.pop(first, None)
        self._cursor = None

    def ack(self, seq):
        """Marks every record <= seq delivered (one state write), deletes fully acked segments (also
        one an earlier ack failed to remove; ack(0) at open does only that: telelogger/storeopen.py)."""
        upto = min(seq, self.next_seq - 1)
        if upto > self.acked:
            self.acked = upto
            self._write_state()
        while self._segs:
            first = self._segs[0][0]
            end = self._segs[1][0] - 1 if len(self._segs) > 1 else self.next_seq - 1
            if end > self.acked:
                break
            if len(self._segs) == 1:
                self.close()
            self.fs.remove(self._p(first))
            self._segs.pop(0)
            self._bad.pop(first, None)
            self._cursor = None

    def peek(self, n):
        """Up to n (seq, record) oldest first, seq > acked. Damaged records are skipped (counted
        in .corrupt) and the rest of that segment is not read."""
        out = []
        if n <= 0:
            return out
        hbuf = bytearray(_HDR)
        cur = self._cursor
        for idx in range(len(self._segs)):
            first, size = self._segs[idx]
            end = self._segs[idx + 1][0] - 1 if idx + 1 < len(self._segs) else self.next_seq - 1
            if end <= self.acked:
                continue
            off, prev = 0, first - 1
            if cur is not None and cur[0] == first and cur[2] - 1 <= self.acked:
                off, prev = cur[1], cur[2] - 1
            with self.fs.open(self._p(first), "rb") as f:
                limit = self._bad.get(first, size)
                while off < limit:
                    r = self._read_rec(f, off, hbuf, prev)
                    if r is None:
                        self.corrupt += 1
                        self._bad[first] = off
                        break
                    seq, payload = r
                    if seq > self.acked:
                        if not out:
                            self._cursor = (first, off, seq)
                        out.append((seq, payload))
                        if len(out) >= n:
                            return out
                    off += _HDR + len(payload)
                    prev = seq
        if not out and self.next_seq - 1 > self.acked:
            # everything left is unreadable: count it as delivered so pending() reaches 0
            self.ack(self.next_seq - 1)
        return out
