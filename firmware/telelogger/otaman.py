# The checks of a staged OTA manifest (telelogger/FORMAT.md "OTA updates", "Manifest"), once its last chunk is on
# flash: its MAC, its header against the signed ota_begin, every file line. Imported by
# telelogger.ota for this one call and dropped again.
import json
import os
from binascii import hexlify

from core.compat import const
from telelogger.cmdseal import equal_ct

_PATH_CHARS = const("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./")
_PATH_MAX = const(64)
_HEADER = const(("fmt", "version", "schema", "min_schema", "chunk", "files", "total", "rollback"))


def _mac(s, pre, path):
    """HMAC-SHA256(key, pre + manifest bytes), streamed from flash; pre is "fm-ota-v1\\n" + id +
    "\\nman\\n" (telelogger.ota)."""
    from hashlib import sha256

    p = s["p"]
    h = sha256(p[0])
    h.update(pre)
    buf = bytearray(512)
    mv = memoryview(buf)
    with open(path, "rb") as f:
        while True:
            k = f.readinto(buf)
            if not k:
                break
            h.update(mv[:k])
    return hexlify(sha256(p[1] + h.digest()).digest())


def _path_ok(p):
    if not isinstance(p, str) or not 4 < len(p) <= _PATH_MAX or not p.endswith(".mpy"):
        return False
    if p[0] in "/." or "//" in p or "/." in p:
        return False
    return not p.strip(_PATH_CHARS)  # every character allowed (strip: iterating would intern each one)


def _int(v, lo, hi):
    return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def check(s, pre, schema):
    """-> None when the manifest is authentic and consistent (its folders made, manifest.part
    renamed to manifest), else why not. schema: the config schema version the running build has."""
    part = s["d"] + "manifest.part"
    if not equal_ct(_mac(s, pre, part), s["mac"].encode()):
        return "bad mac (not signed with this device's key for this bundle)"
    dirs = []
    with open(part) as f:
        try:
            h = json.loads(f.readline())
        except ValueError:
            return "header: bad JSON"
        if not isinstance(h, dict):
            return "header: expected an object"
        for k in _HEADER:
            if not _int(h.get(k), 0, 1 << 31):
                return "header.%s: expected an integer" % k
        if h["fmt"] != 1:
            return "header.fmt %d: this device reads format 1" % h["fmt"]
        for k in ("version", "chunk", "files", "total", "rollback"):
            if h[k] != s[k]:
                return "header.%s %d differs from ota_begin's %d" % (k, h[k], s[k])
        if h["min_schema"] > schema:
            return "needs config schema %d, the running build has %d: update the config first" % (h["min_schema"], schema)
        total = 0
        last = ""
        for i in range(1, s["files"] + 1):
            try:
                e = json.loads(f.readline())
            except ValueError:
                return "file %d: bad JSON" % i
            if not isinstance(e, list) or len(e) != 3 or not _path_ok(e[0]):
                return "file %d: expected [path .mpy of %s, size, sha256]" % (i, _PATH_CHARS[-4:])
            if e[0] <= last:
                return "file %d %s: paths must be sorted and unique" % (i, e[0])
            if not _int(e[1], 1, 1 << 22) or not isinstance(e[2], str) or len(e[2]) != 64:
                return "file %d %s: expected size and 64 hex digits of SHA-256" % (i, e[0])
            last = e[0]
            total += e[1]
            d = e[0].rpartition("/")[0]
            if d and d not in dirs:
                dirs.append(d)
        if f.readline().strip():
            return "more file lines than header.files %d" % s["files"]
    if total != s["total"]:
        return "files add up to %d bytes, header.total says %d" % (total, s["total"])
    for d in dirs:
        q = s["d"][:-1]
        for part_ in d.split("/"):
            q += "/" + part_
            try:
                os.mkdir(q)
            except OSError:
                pass  # exists
    os.rename(part, s["d"] + "manifest")
    return None
