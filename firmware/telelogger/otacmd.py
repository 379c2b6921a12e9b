# The OTA commands (telelogger/FORMAT.md "OTA updates"), signed like every command (commands.CommandHandler checked
# the MAC, freshness and argument types): ota_begin, ota_status, ota_commit, ota_abort. Imported
# for one command and dropped again; the chunk path that stays imported during a transfer is
# telelogger.ota. A refusal raises ValueError(reason) (the error reply carries it) and changes
# nothing on flash.
#
#   result = await handle(t, "ota_begin" | "ota_status" | "ota_commit" | "ota_abort", args)
import json
import os
import sys

from core.compat import const
from telelogger import otaboot
from telelogger.tasks import unload
from telelogger.ota import _dir, _exists, _installed, _rm, _session, abort, need, sha_file, status

# const(): inlined, no names on the heap
_CHUNK_MIN = const(256)  # bytes of data per chunk (with _CHUNK_MAX): a message <= 1578 bytes < the 2048-byte RX cap
_CHUNK_MAX = const(1536)
_MARGIN = const(16384)  # flash kept free beyond the bundle's estimate


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


async def handle(t, cmd, args):
    """-> the result dict of an ota_* command; ValueError(reason) when refused. ota_begin (a
    resume), ota_status and ota_commit first copy what the installed build has (reuse)."""
    if cmd == "ota_abort":
        abort(t)
        return status(t)
    if cmd not in ("ota_begin", "ota_status", "ota_commit"):
        raise ValueError("unknown OTA command %s" % cmd)
    if cmd == "ota_begin":
        await begin(t, args)
    s = _session(t)
    if s is not None and s.get("reuse"):
        await reuse(t, s)
    return (await commit(t)) if cmd == "ota_commit" else status(t)


def _entry(name):
    # the command `name` for cmdhandlers (run(t, args)); otaboot is dropped after it, and
    # telelogger.ota when no update is staged (cmdhandlers drops this module)
    async def run(t, args):
        try:
            return await handle(t, name, args or {})
        finally:
            unload("otaboot")
            m = sys.modules.get("telelogger.ota")
            if m is not None and m.idle(t):
                unload("ota")

    return run


ota_begin = _entry("ota_begin")
ota_status = _entry("ota_status")
ota_commit = _entry("ota_commit")
ota_abort = _entry("ota_abort")


async def reuse(t, s):
    """Copies the files the installed build already has (same path, size and SHA-256) into the
    staged slot instead of waiting for them: an update that changes a few modules sends those.
    Yields between files (a copy is flash writes: the loop keeps running)."""
    import asyncio

    s["reuse"] = False
    slot = _installed(t)[0]
    src = getattr(t, "ota_root", "/") + ("" if slot == otaboot.ROOT_SLOT else "ota/%s/" % slot)
    buf = bytearray(512)
    mv = memoryview(buf)
    with open(s["d"] + "manifest") as f:
        f.readline()
        for _ in range(s["files"]):
            e = json.loads(f.readline())
            dst = s["d"] + e[0]
            if _exists(dst) or _exists(src + e[0]) != e[1] or sha_file(src + e[0]) != e[2]:
                continue
            with open(src + e[0], "rb") as r, open(dst, "wb") as w:
                while True:
                    k = r.readinto(buf)
                    if not k:
                        break
                    w.write(mv[:k])
            s["reused"] = s.get("reused", 0) + 1
            await asyncio.sleep(0)


async def _clear(p):
    """rmtree, yielding after each file (a full slot is ~100 flash commits: the loop keeps running)."""
    import asyncio

    try:
        names = os.listdir(p)
    except OSError:
        return
    for name in names:
        q = p + "/" + name
        if os.stat(q)[0] & 0x4000:
            await _clear(q)
        else:
            os.remove(q)
            await asyncio.sleep(0)
    os.rmdir(p)


async def begin(t, a):
    v, size, total, nf, ch, mac, rb = (a.get(k) for k in ("version", "size", "total", "files", "chunk", "mac", "rollback"))
    for k, x, hi in (("version", v, 2147483647), ("size", size, 65536), ("total", total, 4194304), ("files", nf, 1000),
                     ("chunk", ch, _CHUNK_MAX)):
        if not isinstance(x, int) or isinstance(x, bool) or not 1 <= x <= hi:
            raise ValueError("args.%s: expected an integer 1..%d" % (k, hi))
    if ch < _CHUNK_MIN:
        raise ValueError("args.chunk: at least %d bytes" % _CHUNK_MIN)
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
    need = total + size + (nf + 12) * bs + _MARGIN
    if need > free:
        raise ValueError("bundle needs %d bytes of flash, %d free" % (need, free))
    # accepted: from here on the inactive slot is rewritten
    t.ota = None
    _rm(d + "stage")
    if s is not None and s["slot"] != target:
        await _clear(s["d"][:-1])
    if _exists(d) is None:
        os.mkdir(d[:-1])
    if isinstance(p, list) and p[2] == target:  # the previous build goes: nothing may roll back to it
        otaboot.put(d + "ptr", otaboot.line(p[0], p[1], otaboot.ROOT_SLOT, 0, p[4]))
    _rm(d + target + "/ok")
    await _clear(d + target)
    os.mkdir(d + target)
    rec_ = {"version": v, "size": size, "total": total, "files": nf, "chunk": ch, "mac": mac, "rollback": rb, "slot": target}
    otaboot.put(d + "stage", json.dumps(rec_))
    t.ota_err = None
    return status(t)


async def commit(t):
    """All files staged: verify every SHA-256 again, mark the slot complete, switch ptr (one
    rename), ask the loop for a reboot. A refusal raises ValueError(reason) and changes nothing."""
    s = _session(t)
    if s is None:
        raise ValueError("no update in progress")
    import asyncio

    lst, done, _ = need(t, s)
    if lst:
        raise ValueError("not all staged: %d files still needed, first [file, chunk] %r" % (s["files"] + 1 - done, lst[0]))
    with open(s["d"] + "manifest") as f:
        f.readline()
        for i in range(1, s["files"] + 1):
            e = json.loads(f.readline())
            if sha_file(s["d"] + e[0]) != e[2]:
                _rm(s["d"] + e[0])
                raise ValueError("file %d %s: SHA-256 mismatch on flash: re-send it" % (i, e[0]))
            await asyncio.sleep(0)
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
