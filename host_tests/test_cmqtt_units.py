"""modem.cmqtt / modem.sim7600 / modem.tls / net.cellular unit cases on BOTH runtimes.

The cases live in host_tests/mp/cases_*.py (plain or async `test_*` functions, mptest helpers)
and run against host_tests/mp/cmqttfake.py (a strict scripted CMQTT modem). They are collected
here instead of by test_mp_suite.py because under MicroPython they need a larger heap than the
suite's 96K: the unix port is 64-bit (every object and bytecode pointer twice the ESP32's size)
and the AT engine + CMQTT client + fake + cases are resident at once (~80K on unix). The firmware
itself is what the e2e runs measure; here the heap only has to hold the test scaffolding too.
"""
import ast
import importlib
import os
import re
import sys

import pytest

from mphost import MP_TESTS, compile_tree, run_mp_module

sys.path.insert(0, MP_TESTS)
import mptest  # noqa: E402

HEAP = os.environ.get("MP_CMQTT_HEAPSIZE", "192K")
MODULES = ["cases_cmqtt", "cases_cmqtt_pub", "cases_cmqtt_rx", "cases_sim7600", "cases_cellular"]
MODULES = [m for m in MODULES if os.path.exists(os.path.join(MP_TESTS, m + ".py"))]


def _names(mod):
    with open(os.path.join(MP_TESTS, mod + ".py")) as f:
        tree = ast.parse(f.read())
    return [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name.startswith("test_")]


CASES = [(m, t) for m in MODULES for t in _names(m)]
_res = {}


def _mp(mod):
    if mod not in _res:
        root = os.path.dirname(os.path.dirname(MP_TESTS))
        compiled = compile_tree(MP_TESTS, os.path.join(root, "build", "mptests"))
        out = run_mp_module(mod, compiled, heap=HEAP)
        res = {}
        for line in out.splitlines():
            m = re.match(r"MPTEST (\S+) (PASS|FAIL|SKIP)(.*)", line)
            if m:
                res[m.group(1)] = (m.group(2), m.group(3))
        _res[mod] = (res, out)
    return _res[mod]


@pytest.mark.parametrize("mod,name", CASES, ids=["%s::%s" % c for c in CASES])
def test_cpython(mod, name):
    m = importlib.import_module(mod)
    try:
        mptest.run_test(getattr(m, name))
    except mptest.Skip as e:
        pytest.skip(str(e))


@pytest.mark.micropython
@pytest.mark.parametrize("mod,name", CASES, ids=["%s::%s" % c for c in CASES])
def test_micropython(mod, name):
    res, out = _mp(mod)
    if name not in res:
        pytest.fail("no result for %s under MicroPython:\n%s" % (name, out[-4000:]))
    status, detail = res[name]
    if status == "SKIP":
        pytest.skip(detail.strip())
    assert status == "PASS", "%s failed under MicroPython:%s\n%s" % (name, detail, out[-4000:])
