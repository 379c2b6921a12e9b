#!/usr/bin/env python3
"""Build, sign and chunk an OTA bundle for the telelogger (wire format: firmware/telelogger/FORMAT.md "OTA updates").

    python scripts/ota_bundle.py build --version N [--build build/firmware] [--out build/ota-N]
        [--chunk 1024] [--min-schema S] [--rollback]
    python scripts/ota_bundle.py begin --bundle DIR (--key FILE | --derive MASTER_FILE) --device ID
    python scripts/ota_bundle.py chunks --bundle DIR (--key FILE | --derive MASTER_FILE) --device ID --out DIR
    python scripts/ota_bundle.py estimate --bundle DIR [--baud 115200]

A bundle is the `make build` output's .mpy modules (not boot.py/main.py, which run as source from
the deployed tree, nor config, secrets or board files, which are the device's own) plus a manifest:
JSON lines, a header object then one [path, size, sha256] per file, sorted by path. The manifest is
the same for every device; its MAC (per device, with the device's command key) goes in the signed
`ota_begin` command, and every chunk carries its own MAC bound to the manifest's. `begin` prints
the ota_begin arguments (sign them: `cmdsign.py sign --key K --device ID ota_begin "$(ota_bundle.py
begin ...)"`); `chunks` writes one file per chunk message (publish each to <prefix>/<id>/ota with
QoS 1, e.g. `mosquitto_pub -q 1 -f FILE`): the manifest (000-*.bin) first, then ask `ota_status`
and send what its `need` lists (the device copies the modules it already has).
Python stdlib only.
"""
import argparse
import hashlib
import hmac
import json
import os
import re
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DOMAIN = b"fm-ota-v1\n"
MAGIC = b"FOC1"
CHUNK = 1024
CHUNK_MIN, CHUNK_MAX = 256, 1536  # telelogger/ota.py: a chunk message stays under the modem's 2048-byte RX cap
FMT = 1
SOURCE_ONLY = ("boot.py", "main.py")
MAX_VERSION = 2**31 - 1


class BundleError(ValueError):
    pass


def schema_version(src=None):
    """SCHEMA_VERSION of telelogger/schema.py (the config schema the build validates), 1 without one."""
    path = os.path.join(src or os.path.join(ROOT, "firmware"), "telelogger", "schema.py")
    try:
        with open(path, encoding="utf-8") as f:
            m = re.search(r"^SCHEMA_VERSION\s*=\s*(\d+)", f.read(), re.M)
    except OSError:
        return 1
    return int(m.group(1)) if m else 1


def build_files(build_dir):
    """[(path, bytes)] of the .mpy modules of a build folder, sorted by path ('/' separated)."""
    out = []
    for dirpath, dirs, files in os.walk(build_dir):
        dirs.sort()
        for name in files:
            if not name.endswith(".mpy"):
                continue
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, build_dir).replace(os.sep, "/")
            with open(p, "rb") as f:
                out.append((rel, f.read()))
    out.sort()
    if not out:
        raise BundleError("%s: no .mpy modules (run `make build` first)" % build_dir)
    return out


def make(build_dir, version, chunk=CHUNK, schema=None, min_schema=None, rollback=False, src=None):
    """-> bundle dict {"header", "manifest": bytes, "files": [(path, bytes)]}."""
    if not isinstance(version, int) or not 1 <= version <= MAX_VERSION:
        raise BundleError("version: expected an integer 1..%d" % MAX_VERSION)
    if not CHUNK_MIN <= chunk <= CHUNK_MAX:
        raise BundleError("chunk: %d..%d bytes" % (CHUNK_MIN, CHUNK_MAX))
    files = build_files(build_dir)
    schema = schema_version(src) if schema is None else schema
    header = {"fmt": FMT, "version": version, "schema": schema, "min_schema": schema if min_schema is None else min_schema,
              "chunk": chunk, "files": len(files), "total": sum(len(b) for _, b in files), "rollback": 1 if rollback else 0}
    lines = [json.dumps(header, sort_keys=True, separators=(",", ":"))]
    for path, data in files:
        if len(path) > 64 or not re.fullmatch(r"[A-Za-z0-9_./-]+\.mpy", path) or path[0] in "/.":
            raise BundleError("%s: the device takes paths of A-Za-z0-9_-./ ending in .mpy, up to 64 characters" % path)
        if not data:
            raise BundleError("%s: an empty module (the device takes files of 1 byte or more)" % path)
        lines.append(json.dumps([path, len(data), hashlib.sha256(data).hexdigest()], separators=(",", ":")))
    manifest = ("\n".join(lines) + "\n").encode("ascii")
    if len(manifest) > 65536:
        raise BundleError("manifest of %d bytes: the device takes up to 65536" % len(manifest))
    return {"header": header, "manifest": manifest, "files": files}


def write(bundle, out):
    os.makedirs(os.path.join(out, "files"), exist_ok=True)
    with open(os.path.join(out, "manifest.jsonl"), "wb") as f:
        f.write(bundle["manifest"])
    for path, data in bundle["files"]:
        p = os.path.join(out, "files", *path.split("/"))
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)


def load(out):
    """A bundle written by write(); every file checked against the manifest."""
    with open(os.path.join(out, "manifest.jsonl"), "rb") as f:
        manifest = f.read()
    lines = manifest.decode("ascii").splitlines()
    header = json.loads(lines[0])
    files = []
    for ln in lines[1:]:
        path, size, sha = json.loads(ln)
        with open(os.path.join(out, "files", *path.split("/")), "rb") as f:
            data = f.read()
        if len(data) != size or hashlib.sha256(data).hexdigest() != sha:
            raise BundleError("%s: %s does not match the manifest" % (out, path))
        files.append((path, data))
    return {"header": header, "manifest": manifest, "files": files}


def _key(key):
    return key.encode("utf-8") if isinstance(key, str) else bytes(key)


def _pre(device_id, kind):
    if not device_id or "\n" in device_id:
        raise BundleError("device id: expected a non-empty string without newlines")
    return DOMAIN + device_id.encode("utf-8") + b"\n" + kind + b"\n"


def manifest_mac(key, device_id, manifest):
    """Lowercase hex HMAC-SHA256(key, "fm-ota-v1\\n" + id + "\\nman\\n" + manifest bytes)."""
    return hmac.new(_key(key), _pre(device_id, b"man") + manifest, hashlib.sha256).hexdigest()


def begin_args(bundle, key, device_id):
    """The args of the signed ota_begin command for one device."""
    h = bundle["header"]
    return {"version": h["version"], "size": len(bundle["manifest"]), "total": h["total"], "files": h["files"],
            "chunk": h["chunk"], "rollback": h["rollback"], "mac": manifest_mac(key, device_id, bundle["manifest"])}


def chunk_msg(key, device_id, mac_hex, f, k, data):
    """One chunk message: "FOC1" | file u16 | chunk u16 | length u16 (little-endian) | data | the raw
    HMAC-SHA256(key, "fm-ota-v1\\n" + id + "\\nchunk\\n" + manifest MAC hex + "\\n" + header + data)."""
    head = MAGIC + struct.pack("<HHH", f, k, len(data))
    tag = hmac.new(_key(key), _pre(device_id, b"chunk") + mac_hex.encode("ascii") + b"\n" + head + data, hashlib.sha256)
    return head + data + tag.digest()


def file_bytes(bundle, f):
    return bundle["manifest"] if f == 0 else bundle["files"][f - 1][1]


def n_chunks(bundle, f):
    c = bundle["header"]["chunk"]
    return max(1, -(-len(file_bytes(bundle, f)) // c))


def chunks(bundle, key, device_id, need=None, mac_hex=None):
    """Yields (file, chunk, message) for the whole bundle, or for `need` ([[file, first chunk], ...]
    as ota_status reports it: those files from that chunk on). File 0 is the manifest."""
    mac_hex = mac_hex or manifest_mac(key, device_id, bundle["manifest"])
    c = bundle["header"]["chunk"]
    todo = need if need is not None else [[f, 0] for f in range(len(bundle["files"]) + 1)]
    for f, k0 in todo:
        data = file_bytes(bundle, f)
        for k in range(k0, n_chunks(bundle, f)):
            yield f, k, chunk_msg(key, device_id, mac_hex, f, k, data[k * c : (k + 1) * c])


# The SIM7600 delivers one incoming message as URCs on the UART (modem/cmqtt_rx.py):
# +CMQTTRXSTART: 0,<tl>,<pl> / +CMQTTRXTOPIC: 0,<tl> / topic / +CMQTTRXPAYLOAD: 0,<pl> / payload / +CMQTTRXEND: 0
URC_OVERHEAD = 96  # bytes of those lines around topic and payload, CRLFs included
TOPIC = 32  # "<prefix>/<id>/ota" for a typical prefix and id


def estimate(bundle, baud=115200, per_chunk_ms=40):
    """(seconds, messages, uart bytes) for the whole bundle over the modem's UART (8N1: baud/10 B/s);
    per_chunk_ms: the device's work per chunk (HMAC, flash append)."""
    msgs = 0
    uart = 0
    for f in range(len(bundle["files"]) + 1):
        size = len(file_bytes(bundle, f))
        c = bundle["header"]["chunk"]
        for k in range(n_chunks(bundle, f)):
            msgs += 1
            uart += URC_OVERHEAD + TOPIC + 10 + min(c, size - k * c) + 32
    return uart / (baud / 10.0) + msgs * per_chunk_ms / 1000.0, msgs, uart


def _read_key(a):
    sys.path.insert(0, HERE)
    import cmdsign

    if a.derive:
        return cmdsign.derive_key(cmdsign.read_key(a.derive, "master key"), a.device)
    return cmdsign.read_key(a.key)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="op", required=True)
    b = sub.add_parser("build", help="a bundle folder from a make build output")
    b.add_argument("--build", default=os.path.join(ROOT, "build", "firmware"))
    b.add_argument("--version", type=int, required=True)
    b.add_argument("--out")
    b.add_argument("--chunk", type=int, default=CHUNK)
    b.add_argument("--min-schema", type=int)
    b.add_argument("--rollback", action="store_true", help="allow installing it over a newer version")
    for name in ("begin", "chunks"):
        p = sub.add_parser(name)
        p.add_argument("--bundle", required=True)
        p.add_argument("--device", required=True)
        g = p.add_mutually_exclusive_group(required=True)
        g.add_argument("--key", metavar="FILE")
        g.add_argument("--derive", metavar="MASTER_FILE")
        if name == "chunks":
            p.add_argument("--out", required=True)
    e = sub.add_parser("estimate")
    e.add_argument("--bundle", required=True)
    e.add_argument("--baud", type=int, default=115200)
    a = ap.parse_args(argv)
    try:
        if a.op == "build":
            bundle = make(a.build, a.version, a.chunk, min_schema=a.min_schema, rollback=a.rollback)
            out = a.out or os.path.join(ROOT, "build", "ota-%d" % a.version)
            write(bundle, out)
            h = bundle["header"]
            print("bundle %s: version %d, %d files, %d bytes + manifest %d bytes, chunk %d" % (
                out, h["version"], h["files"], h["total"], len(bundle["manifest"]), h["chunk"]))
            return 0
        bundle = load(a.bundle)
        if a.op == "estimate":
            s, msgs, uart = estimate(bundle, a.baud)
            print("%d chunk messages, %d bytes on the modem UART: %.1f s at %d baud" % (msgs, uart, s, a.baud))
            return 0
        key = _read_key(a)
        if a.op == "begin":
            print(json.dumps(begin_args(bundle, key, a.device), sort_keys=True, separators=(",", ":")))
            return 0
        os.makedirs(a.out, exist_ok=True)
        n = 0
        for f, k, msg in chunks(bundle, key, a.device):
            with open(os.path.join(a.out, "%03d-%04d.bin" % (f, k)), "wb") as w:
                w.write(msg)
            n += 1
        print("%d chunk messages in %s" % (n, a.out))
        return 0
    except (BundleError, OSError, ValueError) as ex:
        print("ota_bundle: %s" % ex, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
