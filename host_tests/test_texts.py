"""The resident telelogger modules' error and log texts live in telelogger/texts.py, looked up by
number when one is raised or written (tasks.text, Telelogger.note): every number a module names
(`_T_NAME = const(n)`) is the text named NAME there, every text is used, and each use formats
with the arguments it is given (the same count of % conversions)."""
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TL = os.path.join(ROOT, "firmware", "telelogger")
USERS = ("record.py", "encjson.py", "loop.py", "sampler.py", "tasks.py", "store.py", "app.py")
ENTRY = re.compile(r'^\s*(".*"),  # (\d+) (\w+)$', re.M)
CONST = re.compile(r"^(_T_\w+) = const\((\d+)\)", re.M)


def _table():
    from telelogger import texts

    src = open(os.path.join(TL, "texts.py")).read()
    rows = [(int(n), name, eval(lit)) for lit, n, name in ENTRY.findall(src)]
    assert [n for n, _, _ in rows] == list(range(len(texts.TEXTS))), "numbers in the comments out of order"
    assert [t for _, _, t in rows] == list(texts.TEXTS)
    return {n: (name, t) for n, name, t in rows}


def _conversions(t):
    return len(re.findall(r"%[^%]", t.replace("%%", "")))


def test_every_number_names_its_text_and_every_text_is_used():
    table = _table()
    used = set()
    for f in USERS:
        src = open(os.path.join(TL, f)).read()
        defined = dict((k, int(v)) for k, v in CONST.findall(src))
        for k, n in defined.items():
            assert n in table and table[n][0] == k[3:], "%s: %s = const(%d) is text %r" % (f, k, n, table.get(n))
            assert src.count(k) >= 2, "%s: %s defined, not used" % (f, k)
            used.add(n)
        for k in set(re.findall(r"\b_T_\w+", src)):
            assert k in defined, "%s uses %s without defining it" % (f, k)
    assert used == set(table), "texts no module uses: %s" % sorted(set(table) - used)


def _commas(src, i):
    """-> (commas at the top level, index after the closing bracket) of the call or tuple open at src[i - 1]."""
    depth, commas = 1, 0
    while depth:
        c = src[i]
        depth += c in "([{"
        depth -= c in ")]}"
        commas += c == "," and depth == 1
        i += 1
    return commas, i


@pytest.mark.parametrize("f", USERS)
def test_each_use_gives_its_text_the_arguments_it_formats(f):
    """`text(_T_X) % (a, b)` and `note(level, _T_X, a, b)`: as many arguments as the text has % conversions."""
    table = _table()
    src = open(os.path.join(TL, f)).read()
    consts = dict((k, int(v)) for k, v in CONST.findall(src))
    for m in re.finditer(r"text\((_T_\w+)\)( % \(|\s*% |\))", src):
        n = _conversions(table[consts[m.group(1)]][1])
        if m.group(2) == ")":  # used as it is (no arguments), or split
            continue
        if m.group(2) == " % (":  # a tuple: count its top-level commas
            commas, end = _commas(src, m.end())
            args = commas + 1 - src[m.end():end - 1].rstrip().endswith(",")
            assert args == n, (f, m.group(1), args, n)
        else:
            assert n == 1, (f, m.group(1), n)
    for m in re.finditer(r"note\(\"\w+\", (_T_\w+)", src):
        args = _commas(src, m.end())[0]
        assert args == _conversions(table[consts[m.group(1)]][1]), (f, m.group(1), args)


def test_lookup_leaves_no_module_behind():
    import sys

    from telelogger import tasks

    sys.modules.pop("telelogger.texts", None)
    assert tasks.text(9) == "empty record"
    assert "telelogger.texts" not in sys.modules


def test_obdii_texts_each_used_with_the_arguments_it_formats():
    """obdii/elmtext.py TEXTS (obdii/elm.py's and obd.py's own errors): each number used, each use
    `lookup(<elmtext>, "text", n, a, b)` given as many arguments as text n has % conversions."""
    from obdii import elmtext

    used = set()
    for f in ("elm.py", "obd.py"):
        src = open(os.path.join(ROOT, "firmware", "obdii", f)).read()
        for m in re.finditer(r'"text", (\d+)', src):
            n = int(m.group(1))
            commas, _ = _commas(src, src.rfind("(", 0, m.start()) + 1)
            assert commas - 2 == _conversions(elmtext.TEXTS[n]), "%s: text %d %r" % (f, n, elmtext.TEXTS[n])
            used.add(n)
    assert used == set(range(len(elmtext.TEXTS)))
