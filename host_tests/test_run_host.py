"""scripts/run_host.py: the ESP32's heap by default, says which interpreter runs, and answers a user's mistake
with one line naming it (exit 2), never a traceback (issue 13 §5, issue 9 §1)."""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN_HOST = os.path.join(ROOT, "scripts", "run_host.py")
sys.path.insert(0, os.path.join(ROOT, "scripts"))

import run_host  # noqa: E402


def _run(*args, timeout=120):
    p = subprocess.run([sys.executable, RUN_HOST] + list(args), capture_output=True, text=True, timeout=timeout,
                       cwd="/")
    return p.returncode, p.stdout + p.stderr


def _one_line_error(rc, out, *words):
    assert rc == 2, out
    assert "Traceback" not in out, out
    lines = [ln for ln in out.splitlines() if ln.strip()]
    errors = [ln for ln in lines if all(w in ln for w in words)]
    assert len(errors) == 1 and errors[0].startswith("run_host: "), out
    return errors[0]


def test_the_default_heap_is_the_esp32_budget():
    assert run_host.DEFAULT_HEAP == "96K"
    args = run_host.parse(["--modem", "/dev/null", "--config", "c.json", "--runtime", "micropython"])
    assert args.heap == "96K"


def test_missing_config_file(tmp_path):
    rc, out = _run("--modem", "/dev/null", "--config", str(tmp_path / "nope.json"))
    _one_line_error(rc, out, "--config", "nope.json", "no such config file")


def test_config_that_is_a_folder(tmp_path):
    rc, out = _run("--modem", "/dev/null", "--config", str(tmp_path))
    _one_line_error(rc, out, "--config", "not a file")


def test_missing_port(tmp_path):
    cfg = tmp_path / "c.json"
    cfg.write_text("{}")
    rc, out = _run("--modem", "/dev/ttyUSB9", "--config", str(cfg))
    _one_line_error(rc, out, "--modem /dev/ttyUSB9", "no such port")
    rc, out = _run("--modem", "/dev/null", "--obd", "/dev/ttyUSB8", "--config", str(cfg))
    _one_line_error(rc, out, "--obd /dev/ttyUSB8", "no such port")


def test_missing_required_option():
    rc, out = _run("--config", "x.json")
    _one_line_error(rc, out, "--modem")


def test_power_key_in_a_folder_that_does_not_exist(tmp_path):
    cfg = tmp_path / "c.json"
    cfg.write_text("{}")
    rc, out = _run("--modem", "/dev/null", "--config", str(cfg), "--power-key", str(tmp_path / "no" / "key"))
    _one_line_error(rc, out, "--power-key", "does not exist")


@pytest.mark.parametrize("runtime", ["cpython", "micropython"])
def test_an_invalid_config_is_one_line_from_the_firmware(tmp_path, runtime):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"broker": {"host": "broker.test", "port": "high", "tls": False}}))
    rc, out = _run("--modem", "/dev/null", "--config", str(cfg), "--runtime", runtime, "--heap", "256K")
    line = _one_line_error(rc, out, "config", str(cfg), "broker.port")
    assert "expected" in line and "high" in line, line
    # several mistakes: one line each, every one named
    cfg.write_text(json.dumps({"broker": 5}))
    rc, out = _run("--modem", "/dev/null", "--config", str(cfg), "--runtime", runtime, "--heap", "256K")
    assert rc == 2 and "Traceback" not in out, out
    named = [ln for ln in out.splitlines() if ln.startswith("run_host: config %s: " % cfg)]
    assert any("broker: expected an object" in ln for ln in named) and any("broker.host" in ln for ln in named), out


def test_says_which_interpreter_runs(tmp_path):
    exe = run_host.micropython_bin()
    bits = run_host.word_bits(exe)
    assert bits in (32, 64)
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"broker": 5}))
    rc, out = _run("--modem", "/dev/null", "--config", str(cfg), "--runtime", "micropython")
    want = "32-bit build (the ESP32's word size)" if bits == 32 else "64-bit wheel fallback"
    assert want in out and "heap 96K" in out and "heapsize=96K" in out, out
    assert "MicroPython 32-bit" in run_host.interpreter_note(exe, 32)
    assert "fallback" in run_host.interpreter_note(exe, 64)


def test_relative_paths_mean_what_the_user_meant(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = run_host.parse(["--modem", "m", "--config", "c.json", "--store", "q", "--power-key", "k",
                           "--runtime", "cpython"])
    cmd, env, shown = run_host.build_command(args)
    for name in ("c.json", "q", "k", "m"):
        assert str(tmp_path / name) in cmd, (name, cmd)
