"""scripts/ota_bundle.py: the bundle of a real `make build`, its manifest and chunk messages as
telelogger/FORMAT.md "OTA updates" defines them, checked against the test kit written from that page
(host_tests/mp/mp_ota_kit.py) and against the device code (telelogger.ota on CPython)."""
import asyncio
import hashlib
import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "scripts"))

import mp_ota_kit as K  # noqa: E402
import ota_bundle as OB  # noqa: E402
from telelogger import ota, otacmd  # noqa: E402


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory):
    import build

    out = str(tmp_path_factory.mktemp("otab") / "firmware")
    build.build(out=out)
    return out


def test_bundle_of_a_real_build_lists_every_module_and_nothing_else(build_dir):
    b = OB.make(build_dir, 7)
    paths = [p for p, _ in b["files"]]
    assert paths == sorted(paths) and "telelogger/ota.mpy" in paths and "telelogger/otaboot.mpy" in paths
    assert all(p.endswith(".mpy") for p in paths) and "main.py" not in paths and "boot.py" not in paths
    lines = b["manifest"].decode().splitlines()
    h = json.loads(lines[0])
    assert h == b["header"] and h["version"] == 7 and h["files"] == len(paths) == len(lines) - 1
    assert h["total"] == sum(len(d) for _, d in b["files"]) and h["chunk"] == 1024 and h["rollback"] == 0
    p, size, sha = json.loads(lines[1])
    with open(os.path.join(build_dir, p), "rb") as f:
        data = f.read()
    assert size == len(data) and sha == hashlib.sha256(data).hexdigest()
    # a chunk message stays well under the firmware's 2048-byte MQTT receive cap
    assert max(len(m) for _, _, m in OB.chunks(b, K.KEY, K.DEV)) == 1024 + 42


def test_tool_and_kit_agree_on_every_byte(build_dir):
    """The tool (hmac/hashlib) and the kit (the firmware's cmdseal) both written from FORMAT.md "OTA updates"."""
    fl = K.files(3)
    b = OB.make(build_dir, 3, chunk=256)
    b["files"] = fl
    kb = K.bundle(3, fl=fl, chunk=256, schema=b["header"]["schema"], min_schema=b["header"]["min_schema"])
    b["header"] = kb["header"]
    b["manifest"] = kb["manifest"]
    assert OB.manifest_mac(K.KEY, K.DEV, b["manifest"]) == K.mac(kb)
    assert OB.begin_args(b, K.KEY, K.DEV) == K.begin_args(kb)
    assert [m for _, _, m in OB.chunks(b, K.KEY, K.DEV)] == list(K.all_msgs(kb))
    assert [m for _, _, m in OB.chunks(b, K.KEY, K.DEV, need=[[2, 1]])] == list(K.all_msgs(kb, [[2, 1]]))


def test_the_device_installs_the_tools_bundle(build_dir, tmp_path):
    root = str(tmp_path) + "/"
    b = OB.make(build_dir, 2)
    t = K.T(root)
    st = asyncio.run(otacmd.handle(t, "ota_begin", OB.begin_args(b, K.KEY, K.DEV)))
    assert st["state"] == "receiving" and st["files"] == len(b["files"]) + 1
    for _, _, m in OB.chunks(b, K.KEY, K.DEV):
        assert ota.chunk(t, m) is None
    r = asyncio.run(otacmd.handle(t, "ota_commit", {}))
    assert r["installed"] == 2
    for p, data in b["files"]:
        with open(root + "ota/a/" + p, "rb") as f:
            assert f.read() == data


def test_bad_input_is_refused_with_a_reason(build_dir, tmp_path):
    with pytest.raises(OB.BundleError, match="version: expected an integer"):
        OB.make(build_dir, 0)
    with pytest.raises(OB.BundleError, match="chunk: 256..1536"):
        OB.make(build_dir, 1, chunk=2000)
    with pytest.raises(OB.BundleError, match="no .mpy modules"):
        OB.make(str(tmp_path), 1)


def test_cli_build_begin_chunks_estimate(build_dir, tmp_path):
    key = tmp_path / "k.txt"
    key.write_text(K.KEY + "\n")
    out = str(tmp_path / "bundle")
    py = [sys.executable, os.path.join(ROOT, "scripts", "ota_bundle.py")]
    r = subprocess.run(py + ["build", "--build", build_dir, "--version", "4", "--out", out], capture_output=True, text=True)
    assert r.returncode == 0 and "version 4" in r.stdout, r.stderr
    r = subprocess.run(py + ["begin", "--bundle", out, "--key", str(key), "--device", K.DEV], capture_output=True, text=True)
    args = json.loads(r.stdout)
    assert args == OB.begin_args(OB.load(out), K.KEY, K.DEV)
    r = subprocess.run(py + ["chunks", "--bundle", out, "--key", str(key), "--device", K.DEV, "--out", str(tmp_path / "c")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    n = len(os.listdir(tmp_path / "c"))
    r = subprocess.run(py + ["estimate", "--bundle", out], capture_output=True, text=True)
    assert r.stdout.startswith("%d chunk messages" % n) and "at 115200 baud" in r.stdout, r.stdout
    # a bundle whose file no longer matches its manifest is refused
    victim = os.path.join(out, "files", "telelogger", "loop.mpy")
    with open(victim, "ab") as f:
        f.write(b"x")
    r = subprocess.run(py + ["estimate", "--bundle", out], capture_output=True, text=True)
    assert r.returncode == 2 and "does not match the manifest" in r.stderr


def test_estimate_at_115200_baud(build_dir):
    s, msgs, uart = OB.estimate(OB.make(build_dir, 1))
    assert 100 < msgs < 400 and 150000 < uart < 400000
    assert s == pytest.approx(uart / 11520.0 + msgs * 0.04)


def _example():
    """The worked example of FORMAT.md's "OTA updates", read from the page."""
    with open(os.path.join(ROOT, "firmware", "telelogger", "FORMAT.md"), encoding="utf-8") as f:
        text = f.read()
    text = text[text.index("## OTA updates"):]
    ex = text[text.index("### Worked example"):]
    v = {}
    lines = ex.splitlines()
    for i, ln in enumerate(lines):
        s = ln.strip()
        for k in ("key", "device", "mac", "begin", "chunk 1/0"):
            if s.startswith(k + ":"):
                v[k] = s[len(k) + 1 :].strip()
        if s.startswith("manifest:"):
            v["manifest"] = (s[len("manifest:"):].strip() + "\n" + lines[i + 1].strip() + "\n").encode()
    return v


def test_worked_example_of_the_page_against_an_independent_signer_openssl_and_the_device(tmp_path):
    import hmac
    import shutil

    v = _example()
    key, dev, man = v["key"], v["device"], v["manifest"]
    assert len(man) == 185
    # a signer written from the page (hmac/hashlib, not the tool)
    mac = hmac.new(key.encode(), b"fm-ota-v1\n" + dev.encode() + b"\nman\n" + man, hashlib.sha256).hexdigest()
    assert mac == v["mac"]
    args = json.loads(v["begin"])
    assert args["mac"] == mac and args["size"] == len(man)
    data = b"example module bytes\n"
    head = b"FOC1" + (1).to_bytes(2, "little") + (0).to_bytes(2, "little") + len(data).to_bytes(2, "little")
    tag = hmac.new(key.encode(), b"fm-ota-v1\n" + dev.encode() + b"\nchunk\n" + mac.encode() + b"\n" + head + data,
                   hashlib.sha256).digest()
    assert (head + data + tag).hex() == v["chunk 1/0"]
    if shutil.which("openssl"):
        (tmp_path / "manifest.jsonl").write_bytes(man)
        (tmp_path / "chunk.bin").write_bytes(head + data + tag)
        for cmd, want in (("printf 'fm-ota-v1\\nABC123\\nman\\n' | cat - manifest.jsonl | openssl dgst -sha256 -hmac \"$KEY\"", mac),
                          ("{ printf 'fm-ota-v1\\nABC123\\nchunk\\n%s\\n' \"$MAC\"; head -c 31 chunk.bin; } | "
                           "openssl dgst -sha256 -hmac \"$KEY\"", tag.hex())):
            r = subprocess.run(["sh", "-c", cmd], cwd=tmp_path, capture_output=True, text=True, env=dict(os.environ, KEY=key, MAC=mac))
            assert r.stdout.strip().endswith(want), (cmd, r.stdout, r.stderr)
    # the device takes it
    mhead = b"FOC1" + bytes(4) + len(man).to_bytes(2, "little")
    mtag = hmac.new(key.encode(), b"fm-ota-v1\n" + dev.encode() + b"\nchunk\n" + mac.encode() + b"\n" + mhead + man,
                    hashlib.sha256).digest()
    t = K.T(str(tmp_path) + "/", key=key, dev=dev)
    assert asyncio.run(otacmd.handle(t, "ota_begin", args))["state"] == "receiving"
    assert ota.chunk(t, mhead + man + mtag) is None
    assert ota.chunk(t, head + data + tag) is None
    assert asyncio.run(otacmd.handle(t, "ota_commit", {}))["installed"] == 8
    with open(str(tmp_path) + "/ota/a/telelogger/x.mpy", "rb") as f:
        assert f.read() == data


def test_estimate_counts_the_simulators_rx_urcs():
    from peers.sim7600_mqtt import RX_CHUNK, rx_burst

    topic = b"x" * OB.TOPIC
    for n in (100, 1066, 1442):
        assert n <= RX_CHUNK
        assert len(rx_burst(0, topic, b"p" * n)) - len(topic) - n <= OB.URC_OVERHEAD


# What the lead adds to telelogger/cmdcheck.SCHEMAS (argument types, checked before the handler runs)
OTA_SCHEMAS = {
    "ota_begin": {"version": ("int", 1, 2147483647, True), "size": ("int", 1, 65536, True),
                  "total": ("int", 1, 4194304, True), "files": ("int", 1, 1000, True),
                  "chunk": ("int", 256, 1536, True), "mac": ("str", None, 64, True), "rollback": ("int", 0, 1, False)},
    "ota_status": {}, "ota_commit": {}, "ota_abort": {},
}


def test_signed_ota_commands_through_the_command_handler(build_dir, tmp_path):
    """scripts/cmdsign.py signs ota_begin with the arguments ota_bundle.py prints; the firmware's
    CommandHandler checks the envelope and freshness, then telelogger.otacmd runs it."""
    import cmdsign
    from telelogger import cmdcheck
    from telelogger.commands import CommandHandler

    for k, v in OTA_SCHEMAS.items():  # the firmware's own schemas (no test-only additions)
        assert cmdcheck.SCHEMAS[k] == v, k
    schemas = cmdcheck.SCHEMAS
    root = str(tmp_path) + "/"
    t = K.T(root)
    now_ms = 1764000000000

    def h(name):
        async def run(args=None):
            return await otacmd.handle(t, name, args or {})
        return run

    ch = CommandHandler(K.KEY, None, {n: h(n) for n in OTA_SCHEMAS}, utc_ms=lambda: now_ms, device_id=K.DEV,
                        schemas=schemas)
    n = [now_ms]

    def cmd(name, args=None):
        n[0] += 1
        body = {"cmd": name, "args": args or {}, "n": n[0], "ts": now_ms // 1000}
        return cmdsign.verify_reply(K.KEY, K.DEV, asyncio.run(ch.handle(cmdsign.sign(K.KEY, K.DEV, body))))

    b = OB.make(build_dir, 5)
    r = cmd("ota_begin", OB.begin_args(b, K.KEY, K.DEV))
    assert r["ok"] and r["result"]["state"] == "receiving", r
    for _, _, m in OB.chunks(b, K.KEY, K.DEV, need=[[0, 0]]):
        assert ota.chunk(t, m) is None
    r = cmd("ota_status")
    assert r["ok"] and r["result"]["need"] == [[i, 0] for i in range(1, 17)], r  # nothing to reuse here
    for _, _, m in OB.chunks(b, K.KEY, K.DEV, need=[[i, 0] for i in range(1, len(b["files"]) + 1)]):
        assert ota.chunk(t, m) is None
    r = cmd("ota_commit")
    assert r["ok"] and r["result"] == {"installed": 5, "slot": "a", "previous": 0, "reboot": True}, r
    assert t.reboot_req
    # the same bundle again: not newer, refused with the reason in the error reply
    r = cmd("ota_begin", OB.begin_args(b, K.KEY, K.DEV))
    assert not r["ok"] and r["error"] == "ota_begin failed: version 5 is on trial: update again once it is marked healthy"
    bad = dict(OB.begin_args(b, K.KEY, K.DEV), chunk=4096)
    r = cmd("ota_begin", bad)
    assert not r["ok"] and r["error"].startswith("args.chunk: expected an integer between 256 and 1536"), r
