"""firmware/telelogger/names.py: the module names the cellular device's resident modules (and the connect path's, loaded
at every connect) have as string literals are interned names before those modules load, so their literals are not
str objects of theirs. Here: the list is exactly those names (a new lookup("modem.x", ...) in a resident module
fails until it is listed; a listed module that no longer exists fails too), and on MicroPython loading the module
interns them without running any of its imports."""
import ast
import glob
import os
import re

import pytest
from mphost import ROOT, run_mp

FW = os.path.join(ROOT, "firmware")
# the connect path: imported at every (re)connect, beside the resident modules (the run's highest heap peak)
CONNECT = ("net.cellular_rare", "modem.cmqtt_rare")


def _modules():
    out = set()
    for p in glob.glob(os.path.join(FW, "**", "*.py"), recursive=True):
        m = os.path.relpath(p, FW)[:-3].replace(os.sep, ".")
        out.add(m[: -len(".__init__")] if m.endswith(".__init__") else m)
    return out


def _path(mod):
    p = os.path.join(FW, mod.replace(".", os.sep))
    return p + ".py" if os.path.exists(p + ".py") else os.path.join(p, "__init__.py")


def _literals(mod, names):
    """The string literals of firmware module `mod` that are module names of more than 10 characters."""
    with open(_path(mod)) as f:
        tree = ast.parse(f.read())
    return {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
            and len(n.value) > 10 and n.value in names}


def _closure(mods, names):
    """mods and the firmware modules their module-level imports load, transitively (what stays loaded with
    them; an import inside a function is a module imported for one job)."""
    seen, todo = [], list(mods)
    while todo:
        m = todo.pop(0)
        if m in seen or m not in names:
            continue
        seen.append(m)
        with open(_path(m)) as f:
            tree = ast.parse(f.read())
        nodes = list(tree.body)
        while nodes:
            n = nodes.pop(0)
            if isinstance(n, ast.Try):
                nodes += n.body
            elif isinstance(n, ast.Import):
                todo += [a.name for a in n.names]
            elif isinstance(n, ast.ImportFrom) and n.module:
                todo.append(n.module)
                todo += [n.module + "." + a.name for a in n.names]
    return seen


def _listed():
    with open(os.path.join(FW, "telelogger", "names.py")) as f:
        tree = ast.parse(f.read())
    return [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]


def _resident():
    import sys

    sys.path.insert(0, FW)
    try:
        from telelogger.appboot import modules
    finally:
        sys.path.pop(0)
    # a cellular device with the co-processor's OBD and the modem's GNSS (the shipped default), and the WiFi
    # variant's cellular-free set for contrast
    return modules({"gnss": {"source": "modem"}}), modules({"transport": "wifi", "gnss": {"source": "modem"}})


def test_core_names_lists_the_module_names_of_the_resident_and_connect_modules():
    names = _modules()
    cellular, wifi = _resident()
    assert "net.cellular" in cellular and "net.cellular" not in wifi  # (the preload's condition)
    want = set()
    for m in _closure(list(cellular) + list(CONNECT), names):
        want |= _literals(m, names)
    listed = _listed()
    assert listed == sorted(listed), "telelogger/names.py: keep the imports sorted: %s" % listed
    assert set(listed) == want, "telelogger/names.py: missing %s, not needed %s" % (
        sorted(want - set(listed)), sorted(set(listed) - want))
    assert all(n in names for n in listed)


def test_preload_interns_them_first_and_forgets_the_module():
    with open(os.path.join(FW, "telelogger", "appboot.py")) as f:
        src = f.read()
    i = src.index("def preload_resident")
    body = src[i: src.index("\ndef ", i + 1)]
    assert body.index('__import__("telelogger.names")') < body.index("for m in names:"), body
    assert 'forget("telelogger.names")' in body


@pytest.mark.micropython
def test_loading_core_names_interns_every_listed_name_and_imports_none(tmp_path):
    listed = _listed()
    script = tmp_path / "n.py"
    script.write_text(
        "import sys, micropython\n"
        "import telelogger.names\n"
        "print('LOADED', sorted(m for m in sys.modules if m.startswith(('modem', 'net', 'obdii'))))\n"
        "micropython.qstr_info(1)\n")
    out = run_mp(str(script), heap="128K")
    m = re.search(r"LOADED (\[.*\])", out)
    assert m and m.group(1) == "[]", out[-2000:]  # the function's imports never ran
    interned = set(re.findall(r"^Q\((.*)\)$", out, re.M))
    assert set(listed) <= interned, sorted(set(listed) - interned)
