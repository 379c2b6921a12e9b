"""Boot in the order that suits MicroPython's heap (issue 9): the validated config from its cache (no
validator imported at a normal boot), and the modules that stay imported preloaded first
(telelogger.resident). Checked on the real entry path (make sim, 32-bit MicroPython) and on the cache
itself."""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "firmware"))
from mphost import compile_tree, micropython_bin  # noqa: E402
from telelogger import config, configcache  # noqa: E402

EXAMPLE = os.path.join(ROOT, "config.example.json")
SECRETS = os.path.join(ROOT, "secrets.example.json")


def _files(tmp_path):
    cfg = tmp_path / "config.json"
    sec = tmp_path / "secrets.json"
    cfg.write_text(json.dumps({"device_id": "CAR7", "broker": {"host": "broker.test", "port": 1883, "tls": False}}))
    sec.write_text(json.dumps({"mqtt_user": "car7", "mqtt_pass": "pw-7x"}))
    schema = tmp_path / "schema.mpy"
    schema.write_bytes(b"compiled defaults v1")
    return str(cfg), str(sec), str(schema)


def test_cache_round_trip_and_every_change_invalidates_it(tmp_path):
    c, s, schema = _files(tmp_path)
    cache = str(tmp_path / "queue_cfg.json")
    assert configcache.load(cache, c, s, schema) is None  # no cache yet
    cfg = config.load(c, s)
    assert configcache.save(cache, c, s, cfg, schema=schema) is True
    assert configcache.load(cache, c, s, schema) == cfg
    # a changed config, secrets or defaults file (new firmware) each mean validating again
    for path, data in ((c, b' {"device_id": "CAR8"}'), (s, b" "), (schema, b"compiled defaults v2")):
        before = open(path, "rb").read()
        with open(path, "ab") as f:
            f.write(data)
        assert configcache.load(cache, c, s, schema) is None, path
        with open(path, "wb") as f:
            f.write(before)
        assert configcache.load(cache, c, s, schema) == cfg, path
    # a damaged cache is not trusted
    with open(cache, "r+b") as f:
        f.seek(5)
        f.write(b"#")
    assert configcache.load(cache, c, s, schema) is None
    # no secrets file: its slot is null, and a secrets file appearing later invalidates the cache
    assert configcache.save(cache, c, None, cfg, schema=schema)
    assert configcache.load(cache, c, None, schema) == cfg
    assert configcache.load(cache, c, s, schema) is None


def test_cache_is_not_written_when_a_file_is_missing(tmp_path):
    c, s, schema = _files(tmp_path)
    cache = str(tmp_path / "queue_cfg.json")
    assert configcache.save(cache, c, s, {"x": 1}, schema=str(tmp_path / "absent.mpy")) is False
    assert not os.path.exists(cache)


def _boot_under_micropython(tmp_path, c, s, cache, heap="256K"):
    """app.load_config_waiting as device_main calls it, on the 32-bit MicroPython: the names it interned
    and whether it asked for a restart."""
    fw = compile_tree(os.path.join(ROOT, "firmware"), os.path.join(ROOT, "build", "fw-mpy"), release=True)
    script = (
        "import micropython, sys\n"
        "from telelogger import app\n"
        "restarts = []\n"
        "cfg = app.load_config_waiting(%r, %r, cache=%r, restart=lambda: restarts.append(1), max_polls=0)\n"
        "print('DEVICE', cfg['device_id'], 'RESTARTS', len(restarts))\n"
        "print('VALIDATOR', [m for m in sys.modules if m in ('telelogger.configcheck', 'telelogger.schema')])\n"
        "micropython.qstr_info(1)\n" % (c, s, cache))
    env = dict(os.environ, MICROPYPATH=":".join([fw, ".frozen"]))
    p = subprocess.run([micropython_bin(), "-X", "heapsize=%s" % heap, "-c", script], capture_output=True, text=True,
                       timeout=60, env=env)
    out = p.stdout + p.stderr
    assert p.returncode == 0, out
    names = [ln[2:-1] for ln in out.splitlines() if ln.startswith("Q(")]
    return out, names


def test_a_normal_boot_does_not_load_the_validator(tmp_path):
    """First boot after a config change: validated, cached, restart asked (so the boot that runs does not
    carry the validator's names). The next boot: the cache, no validator, ~100 fewer interned names."""
    c, s, _ = _files(tmp_path)
    cache = str(tmp_path / "queue_cfg.json")
    out1, names1 = _boot_under_micropython(tmp_path, c, s, cache)
    assert "DEVICE CAR7 RESTARTS 1" in out1 and "validated and cached" in out1, out1
    assert any(n.endswith("configcheck.mpy") for n in names1), names1[-20:]
    out2, names2 = _boot_under_micropython(tmp_path, c, s, cache)
    assert "DEVICE CAR7 RESTARTS 0" in out2, out2
    assert not any(n.endswith(("configcheck.mpy", "schema.mpy")) for n in names2), names2
    assert len(names1) - len(names2) >= 80, (len(names1), len(names2))


def test_make_sim_keeps_imported_what_preload_imported(tmp_path):
    """The resident lists (telelogger.appboot.modules) against the real entry path: the modules make sim's firmware keeps
    imported while it runs WITHOUT the preload (FM_NO_PRELOAD) are the ones preload imports (with what they
    pull in), plus the board's: nothing resident is missed, nothing is preloaded that would not stay."""
    out = tmp_path / "sim-out"
    env = dict(os.environ, FM_HEAPPROF="6", FM_NO_PRELOAD="1")
    p = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "sim.py"), "--out", str(out), "--duration", "14",
                        "--drain", "3", "--gnss", "modem", "--heap", "192K"], capture_output=True, text=True,
                       timeout=380, cwd=ROOT, env=env)
    assert p.returncode == 0, (p.stdout + p.stderr)[-3000:]
    assert "config validated here and cached" in p.stdout + p.stderr
    prof = [json.loads(ln)["heapprof"] for ln in open(out / "firmware.log") if ln.startswith('{"heapprof')]
    assert prof, "no heap profile in firmware.log"
    running = set(prof[-1]["modules"])
    fw = compile_tree(os.path.join(ROOT, "firmware"), os.path.join(ROOT, "build", "fw-mpy"), release=True)
    probe = ("import sys, json\nbase = set(sys.modules)\nfrom telelogger import appboot\n"
             "appboot.preload_resident(%r)\nprint('PRE', json.dumps(sorted(set(sys.modules) - base)))\n")
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    import sim  # the config make sim gives the firmware

    cfg_path = sim.write_config(str(tmp_path), "compact", 5, gnss_source="modem", at_log=str(tmp_path / "at.log"))
    q = subprocess.run([micropython_bin(), "-X", "heapsize=512K", "-c", probe % cfg_path], capture_output=True,
                       text=True, timeout=60, env=dict(os.environ, MICROPYPATH=":".join([fw, ".frozen"])))
    pre = set(json.loads(q.stdout.split("PRE ", 1)[1]))
    pre.discard("telelogger.appboot")
    interp = set(m for m in running if "." not in m and not os.path.exists(os.path.join(ROOT, "firmware", m)))
    # the board's own (board.host and its serial paths, core.serial; the ESP32's board: core.stream) and the
    # host runner's progress lines (telelogger.progress: run_host only)
    boards = ("board", "asyncio", "core.serial", "core.stream", "telelogger.progress")
    missing = sorted(m for m in running - pre - interp if not m.startswith(boards))
    extra = sorted(pre - running)
    assert not missing, "resident while running but not preloaded (add to telelogger/appboot.py modules()): %s" % missing
    assert not extra, "preloaded but dropped again (remove from telelogger/appboot.py modules()): %s" % extra
