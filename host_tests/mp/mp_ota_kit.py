# The sender side of OTA bundles for the mp_ota*.py tests on both runtimes (no test_ functions here):
# manifest, ota_begin args and chunk messages as telelogger/FORMAT.md "OTA updates" defines them, written from that
# page on MicroPython's stdlib. scripts/ota_bundle.py is the tool; host_tests/test_ota_bundle.py
# checks the device against the tool (and the tool against this kit).
import json
import os
from binascii import hexlify
from hashlib import sha256
from struct import pack

from telelogger.cmdseal import hmac256, pads

KEY = "ota-test-key-0123456789abcdef0123"
DEV = "OTA01"


class T:
    """The part of the Telelogger telelogger.ota uses."""

    def __init__(self, root, key=KEY, dev=DEV):
        self.cmd_cfg = (key, True, 300, 32)  # (secrets.hmac_key, commands.enabled, window_s, nonces)
        self.device_id = dev
        self.ota_root = root
        self.reboot_req = False


def tmpdir():
    d = "/tmp/mpota-" + "".join("%02x" % b for b in os.urandom(6))
    os.mkdir(d)
    return d + "/"


def rmtree(d):
    d = d.rstrip("/")
    try:
        names = os.listdir(d)
    except OSError:
        return
    for n in names:
        p = d + "/" + n
        if os.stat(p)[0] & 0x4000:
            rmtree(p)
        else:
            os.remove(p)
    os.rmdir(d)


def files(version, n=5, size=700):
    """A small build: n modules whose bytes depend on the version."""
    out = []
    for i in range(n):
        body = ("# v%d m%d\n" % (version, i)).encode() * (size // 8 + i * 40)
        out.append(("%s/m%d.mpy" % ("pkg" if i % 2 else "lib/sub", i), body[: size + i * 300]))
    out.sort()
    return out


def bundle(version, fl=None, chunk=256, schema=1, min_schema=1, rollback=0):
    fl = fl if fl is not None else files(version)
    h = {"chunk": chunk, "files": len(fl), "fmt": 1, "min_schema": min_schema, "rollback": rollback,
         "schema": schema, "total": sum(len(b) for _, b in fl), "version": version}
    lines = [json.dumps(h)]
    for p, b in fl:
        lines.append(json.dumps([p, len(b), hexlify(sha256(b).digest()).decode()]))
    return {"header": h, "manifest": ("\n".join(lines) + "\n").encode(), "files": fl}


def pre(dev, kind):
    return b"fm-ota-v1\n" + dev.encode() + b"\n" + kind + b"\n"


def mac(b, key=KEY, dev=DEV):
    return hexlify(hmac256(pads(key), pre(dev, b"man"), b["manifest"])).decode()


def begin_args(b, key=KEY, dev=DEV):
    h = b["header"]
    return {"version": h["version"], "size": len(b["manifest"]), "total": h["total"], "files": h["files"],
            "chunk": h["chunk"], "rollback": h["rollback"], "mac": mac(b, key, dev)}


def data(b, f):
    return b["manifest"] if f == 0 else b["files"][f - 1][1]


def msg(b, f, k, key=KEY, dev=DEV, m=None):
    c = b["header"]["chunk"]
    d = data(b, f)[k * c : (k + 1) * c]
    head = b"FOC1" + pack("<HHH", f, k, len(d))
    tag = hmac256(pads(key), pre(dev, b"chunk"), (m or mac(b, key, dev)).encode(), b"\n", head + d)
    return head + d + tag


def all_msgs(b, need=None, key=KEY, dev=DEV):
    m = mac(b, key, dev)
    c = b["header"]["chunk"]
    todo = need if need is not None else [[f, 0] for f in range(len(b["files"]) + 1)]
    for f, k0 in todo:
        n = max(1, (len(data(b, f)) + c - 1) // c)
        for k in range(k0, n):
            yield msg(b, f, k, key, dev, m)


def send_all(t, b, need=None):
    """Every chunk into the device; -> the refusals (a list of strings)."""
    from telelogger import ota

    errs = []
    for p in all_msgs(b, need):
        e = ota.chunk(t, p)
        if e:
            errs.append(e)
    return errs


def snapshot(root):
    """{path: bytes} of every file under root (what 'nothing changed' compares)."""
    out = {}

    def walk(d):
        try:
            names = os.listdir(d)
        except OSError:
            return
        for n in names:
            p = d + "/" + n
            if os.stat(p)[0] & 0x4000:
                walk(p)
            else:
                with open(p, "rb") as f:
                    out[p] = f.read()

    walk(root.rstrip("/"))
    return out
