"""Runs every host_tests/mp/mp_*.py test module on both runtimes.

CPython: the module is imported and each test_* function becomes a pytest test.
MicroPython: the module runs under `micropython -X heapsize=64K` through mptest.py, once
per module, and each test_* result line becomes a pytest test.
"""
import ast
import glob
import importlib
import os
import re
import sys

import pytest

from mphost import MP_TESTS, ROOT, TEST_HEAP, compile_tree, run_mp_module

sys.path.insert(0, MP_TESTS)
import mptest  # noqa: E402

MODULES = sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(MP_TESTS, "mp_*.py")))


def _test_names(mod):
    with open(os.path.join(MP_TESTS, mod + ".py")) as f:
        tree = ast.parse(f.read())
    return [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name.startswith("test_")]


def _heap_for(mod):
    """A module may declare the heap it needs in its first lines: `# mp-heap: 192K` (the default is
    MP_TEST_HEAPSIZE). The figure is on the 64-bit unix port, whose objects are about twice the
    size of the ESP32's 32-bit ones; `make bench` reports the real minimum for the firmware."""
    with open(os.path.join(MP_TESTS, mod + ".py")) as f:
        for _ in range(5):
            m = re.match(r"#\s*mp-heap:\s*(\d+K)", f.readline())
            if m:
                return m.group(1)
    return TEST_HEAP


CASES = [(m, t) for m in MODULES for t in _test_names(m)]
_mp_results = {}


def _mp_module_results(mod):
    if mod not in _mp_results:
        cache = compile_tree(MP_TESTS, os.path.join(ROOT, "build", "mptests"))
        out = run_mp_module(mod, cache, heap=_heap_for(mod))
        res = {}
        for line in out.splitlines():
            m = re.match(r"MPTEST (\S+) (PASS|FAIL|SKIP)(.*)", line)
            if m:
                res[m.group(1)] = (m.group(2), m.group(3))
        s = re.search(r"MPSUMMARY \S+ .*mem_peak=(-?\d+)", out)
        _mp_results[mod] = (res, out, int(s.group(1)) if s else None)
    return _mp_results[mod]


@pytest.mark.parametrize("mod,name", CASES, ids=["%s::%s" % c for c in CASES])
def test_cpython(mod, name):
    m = importlib.import_module(mod)
    try:
        mptest.run_test(getattr(m, name))
    except mptest.Skip as e:
        pytest.skip(str(e))


@pytest.mark.micropython
@pytest.mark.parametrize("mod,name", CASES, ids=["%s::%s" % c for c in CASES])
def test_micropython(mod, name, record_property):
    res, out, peak = _mp_module_results(mod)
    record_property("mem_peak", peak)
    if name not in res:
        pytest.fail("no result for %s under MicroPython (crash or MemoryError?):\n%s" % (name, out[-4000:]))
    status, detail = res[name]
    if status == "SKIP":
        pytest.skip(detail.strip())
    assert status == "PASS", "%s failed under MicroPython:%s\n%s" % (name, detail, out[-4000:])
