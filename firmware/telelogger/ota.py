# OTA update over MQTT, device side: the chunk path (telelogger/FORMAT.md "OTA updates" has the wire format; the
# commands are telelogger.otacmd). Imported when an OTA chunk or command arrives, dropped when no
# update is in progress (idle(t)): nothing stays resident.
#
#   err = chunk(t, payload)        # a message of <prefix>/<id>/ota: None (written or a duplicate) or why not
#   st = status(t)                 # what ota_status replies
#   await run(t)                   # chunk() for each queued message (t.otaq): Telelogger.msg_task
#
# Staging is the inactive slot folder itself (<root>ota/a or b): chunks are appended to the files at
# their final paths, each chunk opened/appended/closed (LittleFS commits at close: a power cut
# keeps whole chunks). Progress is the staged files' sizes, so nothing else needs saving; the
# session (begin's arguments) is <root>ota/stage, written atomically. ota_commit (otacmd) re-verifies
# every SHA-256, writes the slot's ok marker, then switches <root>ota/ptr (telelogger.otaboot) in one rename.
import asyncio
import json
import os
from binascii import hexlify
from hashlib import sha256
from struct import unpack_from

from core.compat import const
from telelogger.cmdseal import equal_ct, hmac256, pads
from telelogger.tasks import unload

_DOMAIN = const(b"fm-ota-v1\n")
_MAGIC = const(b"FOC1")
_HEAD = const(10)  # _MAGIC, file u16, chunk u16, data length u16 (little-endian)
_TAG = const(32)  # raw HMAC-SHA256 after the data
_NEED_MAX = const(16)  # [file, chunk] entries in a status reply


def _dir(t):
    return getattr(t, "ota_root", "/") + "ota/"


def _exists(p):
    try:
        return os.stat(p)[6]
    except OSError:
        return None


def _rm(p):
    try:
        os.remove(p)
    except OSError:
        pass


def rmtree(p):
    """Remove a folder and everything in it; -> bytes of the files removed."""
    n = 0
    try:
        names = os.listdir(p)
    except OSError:
        return 0
    for name in names:
        q = p + "/" + name
        if os.stat(q)[0] & 0x4000:
            n += rmtree(q)
        else:
            n += os.stat(q)[6]
            os.remove(q)
    os.rmdir(p)
    return n


def _mac_pre(t, kind):
    return _DOMAIN + t.device_id.encode() + b"\n" + kind + b"\n"


def _session(t):
    """The update in progress (RAM copy of <root>ota/stage + the key's pads), None when idle."""
    s = getattr(t, "ota", None)
    if s is None:
        d = _dir(t)
        try:
            with open(d + "stage") as f:
                s = json.load(f)
        except (OSError, ValueError):
            return None
        i = _installed(t)
        if s.get("slot") == i[0] and s.get("version") == i[1]:  # installed, cut before the record went
            _rm(d + "stage")
            return None
        s["p"] = pads(t.cmd_cfg[0])  # secrets.hmac_key (loopinit: what the command checker needs)
        s["d"] = "%s%s/" % (d, s["slot"])
        s["rec"] = None
        s["cp"] = _mac_pre(t, b"chunk") + s["mac"].encode() + b"\n"  # what a chunk's MAC covers first
        t.ota = s
        s["reuse"] = _exists(s["d"] + "manifest") is not None  # otacmd.reuse: again, after a reset
        if not s["reuse"] and (_exists(s["d"] + "manifest.part") or 0) >= s["size"]:
            _manifest(t, s)  # complete before a reset, not yet checked
            s = getattr(t, "ota", None)
    return s


def _installed(t):
    """(slot, version, ptr) of the installed build: ptr's when its slot is complete (what the next
    boot runs), else the deployed tree ("-", 0). ptr: a list, None or "bad"."""
    return _boot(t, "installed")


def _boot(t, what):
    """telelogger.otaboot for one look (not kept imported during a transfer): "installed" ->
    (slot, version, ptr), "running" -> the slot this boot runs."""
    from telelogger import otaboot as b

    root = getattr(t, "ota_root", "/")
    try:
        if what == "running":
            return b.running(root)
        p = b.ptr(root)
        if isinstance(p, list) and b.complete(root, p[0], p[1]):
            return p[0], p[1], p
        return b.ROOT_SLOT, 0, p
    finally:
        unload("otaboot")


def _schema(t, slot):
    """Config schema version the running build implements: its manifest's "schema" (the deployed
    tree has no manifest: 1; FORMAT.md "OTA updates")."""
    try:
        with open("%s%s/manifest" % (_dir(t), slot)) as f:
            return json.loads(f.readline()).get("schema", 1)
    except (OSError, ValueError):
        return 1


def rec(s, i):
    """File i (1-based) of the staged manifest: [path, size, sha hex]; cached for runs of chunks."""
    r = s["rec"]
    if r is not None and r[0] == i:
        return r[1]
    with open(s["d"] + "manifest") as f:
        f.readline()
        for _ in range(i - 1):
            f.readline()
        e = json.loads(f.readline())
    s["rec"] = (i, e)
    return e


def sha_file(path):
    h = sha256()
    buf = bytearray(512)
    mv = memoryview(buf)
    with open(path, "rb") as f:
        while True:
            k = f.readinto(buf)
            if not k:
                break
            h.update(mv[:k])
    return hexlify(h.digest()).decode()


def _fail(t, why):
    t.ota_err = why
    t.ota_refused = getattr(t, "ota_refused", 0) + 1
    return why


def abort(t):
    """Forget the update in progress and its staged files (the running build is untouched)."""
    s = _session(t)
    t.ota = None
    if s is not None:
        _rm(_dir(t) + "stage")
        _rm(s["d"] + "ok")
        rmtree(s["d"][:-1])


def need(t, s):
    """-> ([file, first chunk still needed], ...) up to _NEED_MAX, files complete, bytes staged.
    Before the manifest is checked only it is listed: once it is in, ota_status copies what the
    installed build already has (otacmd.reuse), and the next list names what is left to send."""
    out = []
    ch = s["chunk"]
    if _exists(s["d"] + "manifest") is None:
        m = _exists(s["d"] + "manifest.part") or 0
        return [[0, m // ch]], 0, m
    done, got = 1, s["size"]
    with open(s["d"] + "manifest") as f:
        f.readline()
        for i in range(1, s["files"] + 1):
            e = json.loads(f.readline())
            n = _exists(s["d"] + e[0]) or 0
            got += n
            if n >= e[1]:
                done += 1
            elif len(out) < _NEED_MAX:
                out.append([i, n // ch])
    return out, done, got


def status(t):
    cur = _installed(t)[1]
    r = {"state": "idle", "installed": cur, "running": _boot(t, "running"),
         "error": getattr(t, "ota_err", None), "refused": getattr(t, "ota_refused", 0)}
    s = _session(t)
    if s is not None:
        lst, done, got = need(t, s)
        r.update({"state": "ready" if done > s["files"] else "receiving", "reused": s.get("reused", 0), "version": s["version"], "to": s["slot"],
                  "need": lst, "done": done, "files": s["files"] + 1, "bytes": got, "total": s["total"] + s["size"]})
    return r


def chunk(t, b):
    """One chunk message (FORMAT.md "OTA updates", chunk): authenticated, then appended to its staged file when it
    is the next one. -> None, or why it was refused (nothing written)."""
    n = len(b)
    if n < _HEAD + _TAG or b[:4] != _MAGIC:
        return _fail(t, "chunk: not an OTA chunk (%d bytes)" % n)
    f, k, ln = unpack_from("<HHH", b, 4)
    if n != _HEAD + ln + _TAG:
        return _fail(t, "chunk %d/%d: %d bytes, header says %d of data" % (f, k, n, ln))
    s = _session(t)
    if s is None:
        return _fail(t, "chunk %d/%d: no update in progress (ota_begin first)" % (f, k))
    mv = memoryview(b)
    if not equal_ct(hmac256(s["p"], s["cp"], mv[: _HEAD + ln]), mv[_HEAD + ln :]):
        return _fail(t, "chunk %d/%d: bad mac (altered, another bundle or another key)" % (f, k))
    ch = s["chunk"]
    if f == 0:
        path, size = s["d"] + "manifest.part", s["size"]
        if _exists(s["d"] + "manifest") is not None:
            return None  # checked already: a duplicate
    else:
        if _exists(s["d"] + "manifest") is None or f > s["files"]:
            return _fail(t, "chunk %d/%d: the manifest (file 0) first, %d files" % (f, k, s["files"]))
        e = rec(s, f)
        path, size = s["d"] + e[0], e[1]
    have = _exists(path) or 0
    if have % ch and have < size:  # a torn append (POSIX): start the file again
        _rm(path)
        have = 0
    off = k * ch
    if off < have or have >= size:
        return None  # a duplicate
    if off > have:
        return _fail(t, "chunk %d/%d: out of order, file %d needs chunk %d" % (f, k, f, have // ch))
    if ln != min(ch, size - off):
        return _fail(t, "chunk %d/%d: %d bytes of data, expected %d" % (f, k, ln, min(ch, size - off)))
    with open(path, "ab") as w:
        w.write(mv[_HEAD : _HEAD + ln])
    if off + ln < size:
        return None
    if f == 0:
        return _manifest(t, s)
    if sha_file(path) != e[2]:
        _rm(path)
        return _fail(t, "file %d %s: SHA-256 mismatch, staged again from chunk 0" % (f, e[0]))
    return None


def _manifest(t, s):
    """The manifest is complete: its MAC and its content (telelogger.otaman, loaded for this)."""
    from telelogger import otaman

    try:
        why = otaman.check(s, _mac_pre(t, b"man"), _schema(t, _installed(t)[0]))
    finally:
        unload("otaman")
    if why:
        abort(t)
        return _fail(t, "manifest refused: " + why)
    s["reuse"] = True  # the next ota_status copies the files the installed build has (otacmd.reuse)
    return None


async def run(t):
    """Stages the queued OTA chunks (t.otaq, oldest first; Telelogger.msg_task) -> idle(t) after."""
    q = t.otaq
    while q:
        why = chunk(t, q.pop(0))
        if why:
            t.note("warn", "ota: refused %s", why)
        await asyncio.sleep(0)
    return idle(t)


def idle(t):
    """True when no update is in progress: the caller may drop this module."""
    return _session(t) is None
