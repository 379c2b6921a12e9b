# OTA update over MQTT, device side (telelogger/OTA.md has the wire format). Imported when an OTA
# command or chunk arrives, dropped when the update is over (idle(t)): nothing stays resident.
#
#   result = await handle(t, "ota_begin" | "ota_status" | "ota_commit" | "ota_abort", args)
#   err = chunk(t, payload)        # a message of <prefix>/<id>/ota: None (written or a duplicate) or why not
#
# Staging is the inactive slot folder itself (<root>ota/a or b): chunks are appended to the files at
# their final paths, each chunk opened/appended/closed (LittleFS commits at close: a power cut
# keeps whole chunks). Progress is the staged files' sizes, so nothing else needs saving; the
# session (begin's arguments) is <root>ota/stage, written atomically. ota_commit re-verifies every
# SHA-256, writes the slot's ok marker, then switches <root>ota/ptr (telelogger.otaboot) in one rename.
import json
import os
from binascii import hexlify
from hashlib import sha256
from struct import unpack_from

from telelogger import otaboot
from telelogger.cmdseal import equal_ct, pads

DOMAIN = b"fm-ota-v1\n"
MAGIC = b"FOC1"
HEAD = 10  # MAGIC, file u16, chunk u16, data length u16 (little-endian)
TAG = 32  # raw HMAC-SHA256 after the data
CHUNK_MIN, CHUNK_MAX = 256, 1536  # bytes of data per chunk: payload <= 1578 < the 2048-byte RX cap
MARGIN = 16384  # flash kept free beyond the bundle's estimate
NEED_MAX = 16  # [file, chunk] entries in a status reply


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


def _du(p):
    n = 0
    try:
        names = os.listdir(p)
    except OSError:
        return 0
    for name in names:
        st = os.stat(p + "/" + name)
        n += _du(p + "/" + name) if st[0] & 0x4000 else st[6]
    return n


def _free(d):
    st = os.statvfs(d)
    return st[0], st[0] * st[3]


def _mac_pre(t, kind):
    return DOMAIN + t.device_id.encode() + b"\n" + kind + b"\n"


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
        s["p"] = pads(t.cfg["secrets"]["hmac_key"])
        s["d"] = "%s%s/" % (d, s["slot"])
        s["rec"] = None
        t.ota = s
        if _exists(s["d"] + "manifest") is None and (_exists(s["d"] + "manifest.part") or 0) >= s["size"]:
            _manifest(t, s)  # complete before a reset, not yet checked
            s = getattr(t, "ota", None)
    return s


def _installed(t):
    """(slot, version, ptr) of the installed build: ptr's when its slot is complete (what the next
    boot runs), else the deployed tree ("-", 0). ptr: a list, None or "bad"."""
    root = getattr(t, "ota_root", "/")
    p = otaboot.ptr(root)
    if isinstance(p, list) and otaboot.complete(root, p[0], p[1]):
        return p[0], p[1], p
    return otaboot.ROOT_SLOT, 0, p


def _schema(t, slot):
    """Config schema version the running build implements: its manifest's "schema" (the deployed
    tree: 1; OTA.md)."""
    if slot == otaboot.ROOT_SLOT:
        return 1
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
    return why


async def handle(t, cmd, args):
    """The ota_* commands (signed like every command: commands.CommandHandler checked them). A
    refusal raises ValueError(reason): the command's error reply carries it; nothing is changed."""
    if cmd == "ota_begin":
        return begin(t, args)
    if cmd == "ota_status":
        return status(t)
    if cmd == "ota_commit":
        return commit(t)
    if cmd == "ota_abort":
        abort(t)
        return status(t)
    raise ValueError("unknown OTA command %s" % cmd)


def begin(t, a):
    v, size, total, nf, ch, mac, rb = (a.get(k) for k in ("version", "size", "total", "files", "chunk", "mac", "rollback"))
    for k, x, hi in (("version", v, 2147483647), ("size", size, 65536), ("total", total, 4194304), ("files", nf, 1000),
                     ("chunk", ch, CHUNK_MAX)):
        if not isinstance(x, int) or isinstance(x, bool) or not 1 <= x <= hi:
            raise ValueError("args.%s: expected an integer 1..%d" % (k, hi))
    if ch < CHUNK_MIN:
        raise ValueError("args.chunk: at least %d bytes" % CHUNK_MIN)
    if not isinstance(mac, str) or len(mac) != 64 or mac.lower() != mac:
        raise ValueError("args.mac: expected 64 lowercase hex digits (the manifest's MAC)")
    rb = 1 if rb else 0
    s = _session(t)
    if s is not None and s["mac"] == mac:
        return status(t)  # the same bundle again: resume
    slot, cur, p = _installed(t)
    if isinstance(p, list) and p[4]:
        raise ValueError("version %d is on trial: update again once it is marked healthy" % p[1])
    if v <= cur and not rb:
        raise ValueError("version %d not newer than installed %d (a downgrade needs a signed rollback)" % (v, cur))
    d = _dir(t)
    busy = (slot, otaboot.running(getattr(t, "ota_root", "/")))
    target = "a" if "a" not in busy else "b" if "b" not in busy else None
    if target is None:
        raise ValueError("both slots in use (running %s, installed %s): reboot first" % (busy[1], slot))
    bs, free = _free(d[:-4] or "/")
    if s is not None:
        free += _du(s["d"][:-1])
    if s is None or s["slot"] != target:
        free += _du(d + target)
    need = total + size + (nf + 12) * bs + MARGIN
    if need > free:
        raise ValueError("bundle needs %d bytes of flash, %d free" % (need, free))
    # accepted: from here on the inactive slot is rewritten
    abort(t)
    if _exists(d) is None:
        os.mkdir(d[:-1])
    if isinstance(p, list) and p[2] == target:  # the previous build goes: nothing may roll back to it
        otaboot.put(d + "ptr", otaboot.line(p[0], p[1], otaboot.ROOT_SLOT, 0, p[4]))
    _rm(d + target + "/ok")
    rmtree(d + target)
    os.mkdir(d + target)
    rec_ = {"version": v, "size": size, "total": total, "files": nf, "chunk": ch, "mac": mac, "rollback": rb, "slot": target}
    otaboot.put(d + "stage", json.dumps(rec_))
    t.ota_err = None
    return status(t)


def abort(t):
    """Forget the update in progress and its staged files (the running build is untouched)."""
    s = _session(t)
    t.ota = None
    if s is not None:
        _rm(_dir(t) + "stage")
        _rm(s["d"] + "ok")
        rmtree(s["d"][:-1])


def need(t, s):
    """-> ([file, first chunk still needed], ...) up to NEED_MAX, files complete, bytes staged.
    Before the manifest is checked its files are not known: all of them are needed from chunk 0."""
    out = []
    ch = s["chunk"]
    if _exists(s["d"] + "manifest") is None:
        m = _exists(s["d"] + "manifest.part") or 0
        return [[i, m // ch if i == 0 else 0] for i in range(min(s["files"] + 1, NEED_MAX))], 0, m
    done, got = 1, s["size"]
    with open(s["d"] + "manifest") as f:
        f.readline()
        for i in range(1, s["files"] + 1):
            e = json.loads(f.readline())
            n = _exists(s["d"] + e[0]) or 0
            got += n
            if n >= e[1]:
                done += 1
            elif len(out) < NEED_MAX:
                out.append([i, n // ch])
    return out, done, got


def status(t):
    cur = _installed(t)[1]
    r = {"state": "idle", "installed": cur, "running": otaboot.running(getattr(t, "ota_root", "/")),
         "error": getattr(t, "ota_err", None)}
    s = _session(t)
    if s is not None:
        lst, done, got = need(t, s)
        r.update({"state": "ready" if done > s["files"] else "receiving", "version": s["version"], "to": s["slot"],
                  "need": lst, "done": done, "files": s["files"] + 1, "bytes": got, "total": s["total"] + s["size"]})
    return r


def chunk(t, b):
    """One chunk message (OTA.md "Chunk"): authenticated, then appended to its staged file when it
    is the next one. -> None, or why it was refused (nothing written)."""
    n = len(b)
    if n < HEAD + TAG or b[:4] != MAGIC:
        return _fail(t, "chunk: not an OTA chunk (%d bytes)" % n)
    f, k, ln = unpack_from("<HHH", b, 4)
    if n != HEAD + ln + TAG:
        return _fail(t, "chunk %d/%d: %d bytes, header says %d of data" % (f, k, n, ln))
    s = _session(t)
    if s is None:
        return _fail(t, "chunk %d/%d: no update in progress (ota_begin first)" % (f, k))
    from telelogger.cmdseal import hmac256

    mv = memoryview(b)
    if not equal_ct(hmac256(s["p"], _mac_pre(t, b"chunk"), s["mac"].encode(), b"\n", mv[: HEAD + ln]), mv[HEAD + ln :]):
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
        w.write(mv[HEAD : HEAD + ln])
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
    import sys

    from telelogger import otaman

    try:
        why = otaman.check(s, _mac_pre(t, b"man"), _schema(t, _installed(t)[0]))
    finally:
        sys.modules.pop("telelogger.otaman", None)
    if why:
        abort(t)
        return _fail(t, "manifest refused: " + why)
    return None


def commit(t):
    """All files staged: verify every SHA-256 again, mark the slot complete, switch ptr (one
    rename), ask the loop for a reboot. A refusal raises ValueError(reason) and changes nothing."""
    s = _session(t)
    if s is None:
        raise ValueError("no update in progress")
    lst = need(t, s)[0]
    if lst:
        raise ValueError("not all staged: %d files still needed, first [file, chunk] %r" % (len(lst), lst[0]))
    with open(s["d"] + "manifest") as f:
        f.readline()
        for i in range(1, s["files"] + 1):
            e = json.loads(f.readline())
            if sha_file(s["d"] + e[0]) != e[2]:
                _rm(s["d"] + e[0])
                raise ValueError("file %d %s: SHA-256 mismatch on flash: re-send it" % (i, e[0]))
    d = _dir(t)
    slot, cur, p = _installed(t)
    v = s["version"]
    otaboot.put(s["d"] + "ok", "%d\n" % v)
    otaboot.put(d + "boots", "0\n")
    otaboot.put(d + "ptr", otaboot.line(s["slot"], v, slot, cur, 1))  # the switch
    _rm(d + "stage")
    t.ota = None
    t.reboot_req = True
    return {"installed": v, "slot": s["slot"], "previous": cur, "reboot": True}


def idle(t):
    """True when no update is in progress: the caller may drop this module."""
    return _session(t) is None
