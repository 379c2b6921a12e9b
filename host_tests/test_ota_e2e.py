"""OTA end to end on the host's 32-bit MicroPython: a device tree in a temp folder holds the real
`make build` (the deployed tree, version 0); bundle 1 is built by scripts/ota_bundle.py from a
build whose telelogger/tasks.py differs; the device's own .mpy code (telelogger.ota, run from the
tree, at the ESP32's 96 KB heap) stages it — stopped half-way and resumed, the resume copying on the
device the modules the deployed tree already has — and installs it; then
what main.py does at boot (telelogger.otaboot.select) makes the modules import from the new slot,
until a build that never becomes healthy is rolled back to the deployed tree by itself."""
import json
import os
import shutil
import subprocess
import sys

import pytest

from mphost import micropython_bin

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "scripts"))

import build  # noqa: E402
import mp_ota_kit as K  # noqa: E402
import ota_bundle as OB  # noqa: E402

pytestmark = pytest.mark.micropython
HEAP = "96K"

STAGE = r"""
import sys
sys.path[:] = ["", ".frozen"]
import asyncio, gc, json, os
from telelogger import ota, otacmd
class T:
    pass
t = T()
t.cmd_cfg = (%(key)r, True, 300, 32)
t.device_id = %(dev)r
t.ota_root = ""
t.reboot_req = False
cdir, limit, commit = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
with open(cdir + "/begin.json") as f:
    args = json.load(f)
print("BEGIN", json.dumps(asyncio.run(otacmd.handle(t, "ota_begin", args))))
st = ota.status(t)
sent = 0
while st["need"] and sent < limit:
    for f, k in st["need"]:
        for name in sorted(os.listdir(cdir)):
            if not name.endswith(".bin"):
                continue
            fi, ki = int(name[:3]), int(name[4:8])
            if fi == f and ki >= k and sent < limit:
                with open(cdir + "/" + name, "rb") as fh:
                    e = ota.chunk(t, fh.read())
                sent += 1
                if e:
                    print("REFUSED", e)
    st = asyncio.run(otacmd.handle(t, "ota_status", {}))
    gc.collect()
print("SENT", sent)
print("STATUS", json.dumps(st))
if commit:
    print("COMMIT", json.dumps(asyncio.run(otacmd.handle(t, "ota_commit", {}))))
"""

BOOT = r"""
import os, sys
sys.path[:] = ["", ".frozen"]
ROOT = os.getcwd() + "/"
from telelogger import otaboot
print("SLOT", otaboot.select(ROOT))
import telelogger.tasks
print("FILE", telelogger.tasks.__file__)
print("CWD", os.getcwd()[len(ROOT):])
print("MARK", getattr(telelogger.tasks, "OTA_E2E_MARK", None))
from telelogger import otaboot
print("INFO", otaboot.info(ROOT))
"""


def _mp(script, cwd, args=()):
    env = dict(os.environ, MICROPYPATH=".frozen")
    p = subprocess.run([micropython_bin(), "-X", "heapsize=" + HEAP, script] + list(args), cwd=cwd, env=env,
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-2000:]
    return p.stdout


def _val(out, tag):
    for line in out.splitlines():
        if line.startswith(tag + " "):
            return line[len(tag) + 1 :]
    raise AssertionError("no %s line in:\n%s" % (tag, out[-3000:]))


def test_update_from_a_real_build_to_the_next_and_rollback(tmp_path):
    dev = tmp_path / "dev"
    build.build(out=str(dev))  # the deployed tree (boot.py, main.py and the .mpy modules)
    src = tmp_path / "src"
    shutil.copytree(os.path.join(ROOT, "firmware"), src)
    with open(src / "telelogger" / "tasks.py", "a") as f:
        f.write("\nOTA_E2E_MARK = 1\n")
    b1 = tmp_path / "b1"
    build.build(src=str(src), out=str(b1))
    bundle = OB.make(str(b1), 1)
    cdir = tmp_path / "chunks"
    cdir.mkdir()
    with open(cdir / "begin.json", "w") as f:
        json.dump(OB.begin_args(bundle, K.KEY, K.DEV), f)
    n = 0
    for fi, ki, m in OB.chunks(bundle, K.KEY, K.DEV):
        (cdir / ("%03d-%04d.bin" % (fi, ki))).write_bytes(m)
        n += 1
    stage = tmp_path / "stage.py"
    stage.write_text(STAGE % {"key": K.KEY, "dev": K.DEV})
    boot = tmp_path / "boot.py"
    boot.write_text(BOOT)

    # the transfer stops in the manifest (the board reset); the next run resumes from what is staged
    mchunks = OB.n_chunks(bundle, 0)
    out = _mp(str(stage), str(dev), [str(cdir), str(mchunks - 2), "0"])
    half = json.loads(_val(out, "STATUS"))
    assert half["state"] == "receiving" and half["bytes"] == (mchunks - 2) * 1024, half
    assert "REFUSED" not in out
    out = _mp(str(stage), str(dev), [str(cdir), "100000", "1"])
    assert json.loads(_val(out, "BEGIN"))["bytes"] == half["bytes"]  # resumed, nothing sent twice
    # once the manifest is in, the modules the deployed tree has byte for byte are copied on the
    # device (ota_status: reuse); only the changed module is sent
    changed = [p for p, d in bundle["files"] if (dev / p).read_bytes() != d]
    assert changed == ["telelogger/tasks.mpy"]
    done = json.loads(_val(out, "STATUS"))
    assert done["state"] == "ready" and done["reused"] == len(bundle["files"]) - 1, done
    assert int(_val(out, "SENT")) == 2 + OB.n_chunks(bundle, [p for p, _ in bundle["files"]].index(changed[0]) + 1)
    assert "REFUSED" not in out
    assert json.loads(_val(out, "COMMIT")) == {"installed": 1, "slot": "a", "previous": 0, "reboot": True}

    # boots: the new slot's modules, on trial, K times; then back to the deployed tree
    from telelogger import otaboot

    for i in range(otaboot.K):
        out = _mp(str(boot), str(dev))
        assert _val(out, "SLOT") == "a"
        assert _val(out, "FILE") == "telelogger/tasks.mpy" and _val(out, "CWD") == "ota/a"
        assert _val(out, "MARK") == "1"  # the module of the new build
        assert "'trial': %d" % (i + 1) in _val(out, "INFO") and "'ver': 1" in _val(out, "INFO")
    out = _mp(str(boot), str(dev))
    assert _val(out, "SLOT") == "-" and _val(out, "MARK") == "None"
    assert "1 %d boots without a healthy status: rolled back to 0" % otaboot.K in _val(out, "INFO")


def _main_tree(tmp_path, ptr=None, slot_app=None, root_otaboot=True):
    """A root with the real telelogger/otaboot.py and a stand-in app, and an OTA slot a with its own
    stand-in app; -> the script that runs firmware/main.py on that root (R = the folder)."""
    root = tmp_path / "root"
    for d, app in ((root, "print('ROOT APP')"), (root / "ota" / "a", slot_app)):
        if app is None:
            continue
        (d / "telelogger").mkdir(parents=True)
        (d / "telelogger" / "__init__.py").write_text("")
        (d / "telelogger" / "app.py").write_text(
            "import os\n%s\ndef device_main():\n    print('CWD', os.getcwd())\n    raise KeyboardInterrupt\n" % app)
    if root_otaboot:
        shutil.copy(os.path.join(ROOT, "firmware", "telelogger", "otaboot.py"), root / "telelogger")
    if ptr:
        (root / "ota" / "ptr").write_text(ptr)
        (root / "ota" / "a" / "ok").write_text(ptr.split()[1] + "\n")
    with open(os.path.join(ROOT, "firmware", "main.py")) as f:
        src = f.read()
    assert 'R = "/"' in src
    (tmp_path / "main_here.py").write_text(src.replace('R = "/"', "R = %r" % (str(root) + "/")))
    (tmp_path / "run.py").write_text(
        "import os, sys\nsys.path[:] = ['', '.frozen']\ntry:\n    exec(open(%r).read())\n"
        "except KeyboardInterrupt:\n    print('REPL AT', os.getcwd())\nsys.exit(0)\n" % str(tmp_path / "main_here.py"))
    return root


def _run_main(tmp_path, root):
    outs = []
    for exe in (micropython_bin(), sys.executable):
        p = subprocess.run([exe, str(tmp_path / "run.py")], cwd=root, capture_output=True, text=True, timeout=60,
                           env=dict(os.environ, MICROPYPATH=".frozen", PYTHONPATH=""))
        assert p.returncode == 0, p.stdout + p.stderr
        assert p.stdout.rstrip().endswith("REPL AT %s" % root), (exe, p.stdout)  # Ctrl-C: the REPL at the root
        outs.append(p.stdout)
    return outs


def test_main_py_runs_the_deployed_tree_without_ota(tmp_path):
    root = _main_tree(tmp_path, root_otaboot=False)  # a tree from before OTA
    for out in _run_main(tmp_path, root):
        assert "ota: ImportError" in out and "ROOT APP" in out


def test_main_py_runs_the_selected_slot(tmp_path):
    root = _main_tree(tmp_path, ptr="a 2 - 0 0\n", slot_app="print('SLOT APP')")
    for out in _run_main(tmp_path, root):
        assert "SLOT APP" in out and "ROOT APP" not in out and "CWD %s/ota/a" % root in out, out


def test_main_py_falls_back_when_the_slot_cannot_import_the_app(tmp_path):
    root = _main_tree(tmp_path, ptr="a 2 - 0 1\n", slot_app="raise ImportError('no module named x')")
    out = _run_main(tmp_path, root)[0]  # MicroPython first: it rolls the trial build back
    assert "ota: slot a: ImportError" in out and "ROOT APP" in out and "CWD %s" % root in out, out
    assert (root / "ota" / "ptr").read_text() == "- 0 - 0 0\n"
    assert (root / "ota" / "failed").read_text().startswith("2 the app did not start: ImportError")


CHECK = r"""
import sys
sys.path[:] = ["", ".frozen"]
import json
from telelogger import otaboot, ota
p = otaboot.ptr("")
slot = "-"
if isinstance(p, list) and otaboot.complete("", p[0], p[1]):
    slot = p[0]
    d = "ota/%s/" % slot
    with open(d + "manifest") as f:
        h = json.loads(f.readline())
        for _ in range(h["files"]):
            path, size, sha = json.loads(f.readline())
            assert ota.sha_file(d + path) == sha, path
print("BOOTS", slot)
"""


def test_sigkill_at_random_points_always_leaves_a_bootable_device(tmp_path):
    """The staging/installing process is SIGKILLed at random moments and started again until its
    commit went through; after every kill the build the next boot would run is complete."""
    import random
    import time

    dev = tmp_path / "dev"
    build.build(out=str(dev))
    src = tmp_path / "src"
    shutil.copytree(os.path.join(ROOT, "firmware"), src)
    for dirpath, _, names in os.walk(src):  # every module changes: nothing can be reused
        for n in names:
            if n.endswith(".py"):
                with open(os.path.join(dirpath, n), "a") as f:
                    f.write("\n_OTA_KILL = 1\n")
    b1 = tmp_path / "b1"
    build.build(src=str(src), out=str(b1))
    bundle = OB.make(str(b1), 1)
    cdir = tmp_path / "chunks"
    cdir.mkdir()
    with open(cdir / "begin.json", "w") as f:
        json.dump(OB.begin_args(bundle, K.KEY, K.DEV), f)
    for fi, ki, m in OB.chunks(bundle, K.KEY, K.DEV):
        (cdir / ("%03d-%04d.bin" % (fi, ki))).write_bytes(m)
    stage = tmp_path / "stage.py"
    stage.write_text(STAGE % {"key": K.KEY, "dev": K.DEV})
    check = tmp_path / "check.py"
    check.write_text(CHECK)
    env = dict(os.environ, MICROPYPATH=".frozen")
    rng = random.Random(14)
    kills = 0
    # the window a kill lands in grows by 10 % per run (60 ms at first): every run is killed at a random point
    # while the bundle grows with the firmware (126 files, ~4 of them staged per 60 ms here), yet the update
    # always gets through in the end
    for n in range(80):
        p = subprocess.Popen([micropython_bin(), "-X", "heapsize=" + HEAP, str(stage), str(cdir), "100000", "1"],
                             cwd=dev, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        # a kill at a random point of the staging itself (after ota_begin answered), not at a fixed delay from
        # the start: on a fast machine a fixed delay landed in the interpreter's start, or after the commit
        head = []
        while True:
            ln = p.stdout.readline()
            head.append(ln)
            if not ln or ln.startswith("BEGIN"):
                break
        time.sleep(rng.uniform(0.0, 0.06 * 1.1 ** n))
        if p.poll() is None:
            p.kill()
            kills += 1
        out = "".join(head) + p.communicate()[0]
        assert "REFUSED" not in out and "Traceback" not in out, out[-3000:]
        booted = _val(_mp(str(check), str(dev)), "BOOTS")
        assert booted in ("-", "a")
        if "COMMIT" in out:
            assert booted == "a"
            break
    else:
        raise AssertionError("the update never finished in 80 runs")
    print("OTA sigkill: %d kills before the commit went through" % kills)
    assert kills >= 3, "no kill landed during the update: make the delays shorter"
    boot = tmp_path / "boot.py"
    boot.write_text(BOOT)
    out = _mp(str(boot), str(dev))
    assert _val(out, "SLOT") == "a" and _val(out, "CWD") == "ota/a"
