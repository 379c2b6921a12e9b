"""scripts/build.py and scripts/deploy.py against the host MicroPython standing in for a board.

The "board" is the unix `micropython` REPL on a raw pty A, its filesystem a temp folder (its
cwd); a thread copies bytes between pty A's master and a second raw pty B's master, and
mpremote connects to pty B with `resume` (no soft reset, which would end the unix
interpreter). See shared/reference/host-tooling.md.
"""
import hashlib
import json
import os
import subprocess
import sys
import threading
import time
import tty

import pytest

from mphost import ROOT, ReplOverPty, micropython_bin

SCRIPTS = os.path.join(ROOT, "scripts")
PY = sys.executable
MPREMOTE = os.path.join(os.path.dirname(PY), "mpremote")
sys.path.insert(0, SCRIPTS)
import build  # noqa: E402


class HostBoardOverPty(ReplOverPty):
    def __init__(self, fs_dir):
        self.fs = str(fs_dir)
        # MICROPYPATH .frozen only: sys.path = ['', '.frozen'], imports from the "board" cwd
        ReplOverPty.__init__(self, self.fs, ".frozen", "4M")


@pytest.fixture(scope="module")
def fw_build(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("build") / "firmware")
    rows = build.build(out=out)
    return out, rows


@pytest.fixture
def hostboard(tmp_path):
    fs = tmp_path / "boardfs"
    fs.mkdir()
    b = HostBoardOverPty(fs)
    yield b
    b.close()


def deploy(*args, timeout=180):
    p = subprocess.run([PY, os.path.join(SCRIPTS, "deploy.py")] + list(args), capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    return p.returncode, p.stdout, p.stderr


def example(name):
    return os.path.join(ROOT, "firmware", name)


CA_PEM = "-----BEGIN CERTIFICATE-----\nMIIBtest\n-----END CERTIFICATE-----\n"


def filled(tmp_path):
    """The shipped examples as an owner fills them in: a real broker name, a real HMAC key, and the CA
    file the secrets name next to them. -> (config path, secrets path)."""
    d = tmp_path / "mine"
    (d / "certs").mkdir(parents=True, exist_ok=True)
    cfg = json.load(open(example("config.example.json")))
    cfg["broker"]["host"] = "broker.fleet.test"
    sec = json.load(open(example("secrets.example.json")))
    sec["hmac_key"] = "k3Jd9Qx2Lm8Zr5Tv1Wb7Yc4Nh6Pf0Sa2Ge8Ju"
    sec["mqtt_pass"] = "s3cret-board-pass"
    (d / "certs" / "ca.pem").write_text(CA_PEM)
    (d / "config.json").write_text(json.dumps(cfg))
    (d / "secrets.json").write_text(json.dumps(sec))
    return str(d / "config.json"), str(d / "secrets.json")


# ---- build ----------------------------------------------------------------------------------


def test_build_compiles_every_module(fw_build):
    out, rows = fw_build
    srcs = build.sources(os.path.join(ROOT, "firmware"))
    empty = [rel for rel, p in srcs if build.empty_package_init(rel, p)]
    # the packages whose __init__.py is empty give no file (a namespace package on MicroPython); board's has code
    assert "telelogger/__init__.py" in empty and "at/__init__.py" in empty and "board/__init__.py" not in empty
    assert len(rows) == len(srcs) - len(empty) > 10
    for rel, _ in srcs:
        name = rel if rel in build.SOURCE_ONLY else rel[:-3] + ".mpy"
        path = os.path.join(out, name)
        assert os.path.exists(path) == (rel not in empty), name
        if rel in empty:
            continue
        if name.endswith(".mpy"):
            with open(path, "rb") as f:
                head = f.read(2)
            assert head[0:1] == b"M" and head[1] == 6, (name, head)  # mpy format version 6
    for rel, py, mpy, name in rows:
        assert os.path.getsize(os.path.join(out, name)) == mpy
        if py > 2000:
            assert mpy < py, rel  # bytecode without source lines is smaller than the source
    t = build.table(rows).splitlines()
    assert t[-1].split()[-2:] == [str(sum(r[1] for r in rows)), str(sum(r[2] for r in rows))]


def test_build_cli_prints_table_and_fails_clearly(tmp_path):
    out = tmp_path / "fw"
    p = subprocess.run([PY, os.path.join(SCRIPTS, "build.py"), "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "board/__init__.py" in p.stdout and "total (" in p.stdout
    bad = tmp_path / "src"
    (bad / "pkg").mkdir(parents=True)
    (bad / "pkg" / "broken.py").write_text("def f(:\n")
    p = subprocess.run([PY, os.path.join(SCRIPTS, "build.py"), "--src", str(bad), "--out", str(tmp_path / "o2")], capture_output=True, text=True)
    assert p.returncode == 1 and "pkg/broken.py" in p.stderr
    assert not (tmp_path / "o2").exists()  # nothing half-built


def test_build_shares_long_strings_as_interned_names(tmp_path):
    """A literal longer than 10 characters that two modules have (or code names) is one interned name on the
    device: the same object in both modules (`is`), where mpy-cross would make a str object in each; a
    literal of one module that no code names stays a str object (freed with its module); the compiled
    code is what the source says, and a compile error names the source's own line."""
    src = tmp_path / "src"
    (src / "pkg").mkdir(parents=True)
    (src / "pkg" / "a.py").write_text('"""doc"""\nA = "connect_errors"\nONLY = "only_here_literal"\nN = "read_voltage"\n'
                                      'def f():\n    return {"connect_errors": 1}["connect_errors"]\n')
    (src / "pkg" / "b.py").write_text('def read_voltage():\n    return 3\nF = read_voltage\nB = "connect_errors"\nK = "+CME ERROR:"\n')
    index = build.firmware_index(str(src))
    assert index == {"connect_errors", "read_voltage"}
    assert build.device_source("x = 'read_voltage'\n", index).startswith("if 0: read_voltage  #")
    assert build.device_source("x = 'short'\n", index) == "x = 'short'\n"
    out = tmp_path / "out"
    build.build(str(src), str(out))
    code = ("import pkg.a as a, pkg.b as b\n"
            "print(a.A is b.B, a.f(), a.N is b.F.__name__, a.ONLY, b.K, b.F())\n")  # (a name here would be interned first)
    env = dict(os.environ, MICROPYPATH=str(out) + ":.frozen")
    p = subprocess.run([micropython_bin(), "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert p.stdout.split() == ["True", "1", "True", "only_here_literal", "+CME", "ERROR:", "3"], p.stdout + p.stderr
    plain = tmp_path / "plain" / "pkg"  # the control: the same sources compiled as they are share nothing
    plain.mkdir(parents=True)
    for m in ("a", "b"):
        subprocess.run(build.mpy_cross_cmd(build.find_mpy_cross(), str(src / "pkg" / (m + ".py")), str(plain / (m + ".mpy")),
                                           "pkg/%s.mpy" % m), check=True)
    env["MICROPYPATH"] = str(plain.parent) + ":.frozen"
    p = subprocess.run([micropython_bin(), "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert p.stdout.split()[:3] == ["False", "1", "False"], p.stdout + p.stderr
    (src / "pkg" / "c.py").write_text('X = "connect_errors"\ndef g(:\n')
    with pytest.raises(build.BuildError, match="line 2"):
        build.build(str(src), str(tmp_path / "o2"))


def test_mpy_build_imports_under_host_micropython(fw_build):
    out, _ = fw_build
    code = (
        "import sys, board, board.host, modem.power\n"
        "d = board.load_board('%s/boards/oneplus-b.json')\n"
        "assert 'board.desc' not in sys.modules\n"  # dropped after use: its RAM comes back
        "print('OK', d['name'], board.device_id_from_mac(b'\\x00\\xff\\xff\\xff\\xff\\xff'))\n" % ROOT
    )
    env = dict(os.environ, MICROPYPATH=out + ":.frozen")
    p = subprocess.run([micropython_bin(), "-X", "heapsize=96K", "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert "OK oneplus-b VVVVVVVV" in p.stdout, p.stdout + p.stderr


# ---- deploy ---------------------------------------------------------------------------------


def test_deploy_to_host_board(fw_build, hostboard, tmp_path):
    out, rows = fw_build
    cfg_path, sec_path = filled(tmp_path)
    rc, so, se = deploy(
        "--port", hostboard.port, "--board", "oneplus-b", "--build", out,
        "--config", cfg_path, "--secrets", sec_path,
        "--mpremote-args", "resume", "--no-reset",
    )  # fmt: skip
    assert rc == 0, so + se
    assert "board answers" in so and "copying" in so and "done:" in so
    fs = hostboard.fs
    for _, _, _, name in rows:
        with open(os.path.join(out, name), "rb") as a, open(os.path.join(fs, name), "rb") as b:
            assert a.read() == b.read(), name
    with open(os.path.join(ROOT, "boards", "oneplus-b.json")) as f:
        want = json.load(f)
    for p in ("board.json", "boards/oneplus-b.json"):
        with open(os.path.join(fs, p)) as f:
            assert json.load(f) == want
    with open(os.path.join(fs, "config.json")) as a, open(cfg_path) as b:
        assert a.read() == b.read()
    assert os.path.exists(os.path.join(fs, "secrets.json"))
    # the certificate the secrets name went with them, to the path the firmware opens
    with open(os.path.join(fs, "certs", "ca.pem")) as f:
        assert f.read() == CA_PEM
    assert "certs/ca.pem" in so
    # the firmware imports from the board's filesystem, through the same REPL
    got = hostboard.mpremote(
        "exec",
        "import board, at.engine, modem.power, telelogger.config as c\n"
        "d = board.load_board()\n"  # the deployed /board.json
        "cfg = c.load('config.json', 'secrets.json')\n"
        "print('FW', d['name'], cfg['transport'])",
    )
    assert "FW oneplus-b cellular" in got, got
    # the validated config's cache went with them: the first boot reads it (no validator imported)
    assert "queue_cfg.json" in so
    got = hostboard.mpremote(
        "exec",
        "import sys\nfrom telelogger import app\n"
        "cfg = app.load_config_cached('config.json', 'secrets.json', 'queue_cfg.json')\n"
        "print('CACHED', cfg is not None and cfg['transport'], 'telelogger.configcheck' in sys.modules)\n"
        "print('PATH', cfg['config_path'])",
    )
    assert "CACHED cellular False" in got, got
    assert "PATH config.json" in got, got  # where config_set writes: the board's file, not the host's


def test_wifi_deploy_installs_umqtt_with_mip_and_it_publishes(fw_build, hostboard, tmp_path):
    """transport wifi: deploy runs `mpremote mip install umqtt.simple` (here from a local index of
    micropython-lib's umqtt.simple as fetched from PyPI by `make venv`), and the firmware's
    WifiPublisher then publishes through that real umqtt, under MicroPython, to mosquitto."""
    import mip_index
    import paho.mqtt.client as mqtt
    from peers.broker import Broker

    out, _ = fw_build
    index = tmp_path / "mip"
    pkg = mip_index.build(str(index), mip_index.fetch())
    srv = mip_index.Server(str(index))
    cfg_path, sec_path = filled(tmp_path)
    cfg = json.load(open(cfg_path))
    cfg["transport"] = "wifi"
    cfg["broker"].update(tls=False, port=1883)
    sec = json.load(open(sec_path))
    sec["wifi_ssid"] = "depot"
    sec["certs"]["ca"] = ""  # not copied from the wifi test's folder
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    (tmp_path / "secrets.json").write_text(json.dumps(sec))
    broker = Broker().start()
    got = []
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    ready = threading.Event()
    sub.on_connect = lambda c, u, f, rc, p: c.subscribe("depot/#", 1)
    sub.on_subscribe = lambda *a: ready.set()
    sub.on_message = lambda c, u, m: got.append((m.topic, m.payload))
    try:
        rc, so, se = deploy(
            "--port", hostboard.port, "--board", "esp32-sim7600", "--build", out, "--config", str(tmp_path / "config.json"),
            "--secrets", str(tmp_path / "secrets.json"), "--mpremote-args", "resume", "--no-reset",
            "--mip-index", srv.url, "--mip-target", "lib",
        )  # fmt: skip
        assert rc == 0, so + se
        assert "installing umqtt.simple" in so and srv.url in so
        for target, short in pkg["hashes"]:
            with open(os.path.join(hostboard.fs, "lib", target), "rb") as f:
                assert hashlib.sha256(f.read()).hexdigest().startswith(short), target
        sub.connect("127.0.0.1", broker.port)
        sub.loop_start()
        assert ready.wait(10)
        res = hostboard.mpremote("exec", (
            "import sys, asyncio\n"
            "sys.path.append('lib')\n"
            "from net.wifi import WifiPublisher\n"
            "async def go():\n"
            "    p = WifiPublisher('dep1', '127.0.0.1', %d)\n"
            "    await p.connect()\n"
            "    for i in range(3):\n"
            "        await p.publish('depot/dep1/data', b'rec%%d' %% i, 1)\n"
            "    await p.disconnect()\n"
            "    import umqtt.simple as u\n"
            "    print('UMQTT', u.__file__, p.stats['published'])\n"
            "asyncio.run(go())\n") % broker.port, timeout=60)
        assert "UMQTT lib/umqtt/simple.py 3" in res, res
        deadline = time.time() + 10
        while len(got) < 3 and time.time() < deadline:
            time.sleep(0.05)
        assert got == [("depot/dep1/data", b"rec%d" % i) for i in range(3)], got
    finally:
        sub.loop_stop()
        broker.stop()
        srv.close()


def test_redeploy_keeps_secrets_and_queue_unless_asked(fw_build, hostboard, tmp_path):
    out, _ = fw_build
    fs = hostboard.fs
    with open(os.path.join(fs, "secrets.json"), "w") as f:
        f.write('{"mqtt_pass": "on-the-board"}')
    os.makedirs(os.path.join(fs, "queue", "seg"))
    with open(os.path.join(fs, "queue", "seg", "000001.bin"), "wb") as f:
        f.write(b"unsent")
    os.makedirs(os.path.join(fs, "at"))
    with open(os.path.join(fs, "at", "engine.py"), "w") as f:
        f.write("raise ImportError('stale source shadowing the build')\n")
    with open(os.path.join(fs, "at", "__init__.mpy"), "wb") as f:  # an earlier build's empty package module
        f.write(b"")
    cfg_path, sec_path = filled(tmp_path)
    common = ["--port", hostboard.port, "--board", "oneplus-h", "--build", out, "--mpremote-args", "resume", "--no-reset",
              "--config", cfg_path, "--secrets", sec_path]  # fmt: skip
    rc, so, se = deploy(*common)
    assert rc == 0, so + se
    assert "kept the board's existing secrets.json" in so and "kept the queue folder" in so
    with open(os.path.join(fs, "secrets.json")) as f:
        assert "on-the-board" in f.read()
    assert os.path.exists(os.path.join(fs, "queue", "seg", "000001.bin"))
    assert not os.path.exists(os.path.join(fs, "at", "engine.py"))  # stale shadow removed
    assert not os.path.exists(os.path.join(fs, "at", "__init__.mpy"))  # and the package module the build has no more
    assert "ENGINE ok" in hostboard.mpremote("exec", "import at.engine; print('ENGINE ok')")

    rc, so, se = deploy(*common, "--overwrite-secrets", "--wipe-queue")
    assert rc == 0, so + se
    with open(os.path.join(fs, "secrets.json")) as a, open(sec_path) as b:
        assert a.read() == b.read()
    assert not os.path.exists(os.path.join(fs, "queue"))


def test_deploy_removes_the_ota_pointer(fw_build, hostboard, tmp_path):
    """An OTA update left /ota/ptr selecting a slot: a deploy must make the board boot the tree it
    copies (the slot folders themselves stay)."""
    out, _ = fw_build
    fs = hostboard.fs
    os.makedirs(os.path.join(fs, "ota", "a"))
    with open(os.path.join(fs, "ota", "ptr"), "w") as f:
        f.write("a 8 - 0 0\n")
    with open(os.path.join(fs, "ota", "a", "ok"), "w") as f:
        f.write("8\n")
    cfg_path, sec_path = filled(tmp_path)
    rc, so, se = deploy("--port", hostboard.port, "--board", "oneplus-h", "--build", out, "--mpremote-args", "resume",
                        "--no-reset", "--config", cfg_path, "--secrets", sec_path)
    assert rc == 0, so + se
    assert "removing ota/ptr: the board boots the deployed tree" in so, so
    assert not os.path.exists(os.path.join(fs, "ota", "ptr"))
    assert os.path.exists(os.path.join(fs, "ota", "a", "ok"))
    rc, so, se = deploy("--port", hostboard.port, "--board", "oneplus-h", "--build", out, "--mpremote-args", "resume",
                        "--no-reset", "--config", cfg_path, "--secrets", sec_path)
    assert rc == 0 and "ota/ptr" not in so, so + se  # nothing to remove: nothing said


def test_frozen_deploy_copies_no_modules_and_removes_shadowing_copies(fw_build, hostboard, tmp_path):
    out, _ = fw_build
    fs = hostboard.fs
    cfg_path, sec_path = filled(tmp_path)
    common = ["--port", hostboard.port, "--board", "oneplus-b", "--build", out, "--mpremote-args", "resume", "--no-reset",
              "--config", cfg_path, "--secrets", sec_path]  # fmt: skip
    rc, so, se = deploy(*common)  # an earlier, non-frozen deploy left the modules on the filesystem
    assert rc == 0, so + se
    assert os.path.exists(os.path.join(fs, "at", "engine.mpy"))
    rc, so, se = deploy(*common, "--frozen")
    assert rc == 0, so + se
    assert "frozen firmware image" in so and "shadow the frozen modules" in so
    assert not os.path.exists(os.path.join(fs, "at", "engine.mpy"))  # would win over the frozen module
    for keep in ("main.py", "boot.py", "board.json", "config.json"):
        assert os.path.exists(os.path.join(fs, keep)), keep


def test_manifest_freezes_every_firmware_package():
    names = {}
    with open(os.path.join(ROOT, "boards", "manifest.py")) as f:
        code = f.read()
    got = []
    exec(code, {"include": lambda p: None, "module": lambda n, base_path, opt=0: got.append(n),
                "package": lambda n, base_path, opt=0: got.append(n)}, names)
    fw = os.path.join(ROOT, "firmware")
    pkgs = sorted(d for d in os.listdir(fw) if os.path.exists(os.path.join(fw, d, "__init__.py")))
    mods = sorted(f for f in os.listdir(fw) if f.endswith(".py") and f not in ("boot.py", "main.py"))
    assert sorted(got) == sorted(pkgs + mods)


def test_deploy_refuses_when_flash_too_small(fw_build, hostboard):
    out, _ = fw_build
    # a 64 KB littlefs RAM disk as the board's filesystem: smaller than the build
    hostboard.mpremote(
        "exec",
        "import vfs, os\n"
        "class RAM:\n"
        "    def __init__(s, n): s.d = bytearray(n * 512)\n"
        "    def readblocks(s, b, buf, off=0):\n"
        "        a = b * 512 + off; buf[:] = s.d[a:a + len(buf)]\n"
        "    def writeblocks(s, b, buf, off=0):\n"
        "        a = b * 512 + (off or 0); s.d[a:a + len(buf)] = buf\n"
        "    def ioctl(s, op, arg):\n"
        "        return {4: len(s.d) // 512, 5: 512}.get(op, 0)\n"
        "r = RAM(128)\n"
        "vfs.VfsLfs2.mkfs(r)\n"
        "vfs.mount(vfs.VfsLfs2(r), '/ramfs')\n"
        "os.chdir('/ramfs')\n",
    )
    rc, so, se = deploy("--port", hostboard.port, "--board", "oneplus-b", "--build", out, "--mpremote-args", "resume", "--no-reset")
    assert rc == 2, so + se
    assert "free flash too small" in se and "needs" in se, se
    assert "copying" not in so
    assert hostboard.mpremote("exec", "import os; print('LS', os.listdir())").strip().endswith("LS []")


def test_missing_port_is_a_clear_error(fw_build):
    out, _ = fw_build
    rc, so, se = deploy("--port", "/dev/ttyUSB-nonexistent", "--board", "oneplus-b", "--build", out)
    assert rc == 2
    assert "/dev/ttyUSB-nonexistent does not exist" in se and "plugged in" in se


def test_board_not_answering(fw_build, tmp_path):
    out, _ = fw_build
    ma, sa = os.openpty()  # a port nobody answers on
    tty.setraw(sa)
    try:
        rc, so, se = deploy("--port", os.ttyname(sa), "--board", "oneplus-b", "--build", out, "--mpremote-args", "resume", "--timeout", "3")
    finally:
        os.close(ma)
        os.close(sa)
    assert rc == 2
    assert "not answering" in se or "failed on" in se, se


def test_deploy_refuses_secrets_naming_a_missing_certificate(fw_build, tmp_path):
    # the shipped example names certs/ca.pem, which is not in the repo: refused with where it looked,
    # before the board is touched (it used to deploy, then reset-loop on the board)
    out, _ = fw_build
    cfg_path, sec_path = filled(tmp_path)
    os.remove(os.path.join(os.path.dirname(sec_path), "certs", "ca.pem"))
    rc, so, se = deploy("--port", os.devnull, "--board", "oneplus-b", "--build", out, "--config", cfg_path,
                        "--secrets", sec_path)
    assert rc == 2, so + se
    assert "certs.ca" in se and "certs/ca.pem" in se and "not there" in se, se


def test_invalid_config_is_refused(fw_build, tmp_path):
    out, _ = fw_build
    with open(example("config.example.json")) as f:
        cfg = json.load(f)
    cfg["transport"] = "pigeon"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(cfg))
    rc, so, se = deploy("--port", os.devnull, "--board", "oneplus-b", "--build", out, "--config", str(bad))
    assert rc == 2
    assert "config refused" in se and "transport" in se, se
    assert "connecting" not in so  # refused before touching the board
    rc, so, se = deploy("--port", os.devnull, "--board", "no-such-board", "--build", out)
    assert rc == 2 and "unknown board 'no-such-board'" in se and "oneplus-b" in se


def test_no_mip_manifest_of_sources():
    # `mpremote mip install github:...` would install the .py sources, which an ESP32 cannot compile
    # within the telelogger's heap: that path is not offered (make deploy copies the .mpy build)
    assert not os.path.exists(os.path.join(ROOT, "package.json"))
    assert not hasattr(build, "package_json")


def test_logs_follow_the_board_console():
    m, s = os.openpty()
    tty.setraw(s)
    stop = threading.Event()

    def talk():  # keep printing: the log follower opens the port (and flushes it) at some point
        while not stop.wait(0.1):
            os.write(m, b"[telelogger] sent 3 records\r\n")

    t = threading.Thread(target=talk, daemon=True)
    t.start()
    try:
        rc, so, se = deploy("--port", os.ttyname(s), "--logs", "--logs-duration", "1.5")
    finally:
        stop.set()
        t.join(2)
        os.close(m)
        os.close(s)
    assert rc == 0, se
    assert "following the log" in so and "[telelogger] sent 3 records" in so
