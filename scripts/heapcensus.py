#!/usr/bin/env python3
"""Where the live heap goes, by kind of object: a diagnostic 32-bit MicroPython (the v1.28.0 source in
../shared/micropython, with scripts/heapcensus/census.c added to its garbage collector) runs the entry path
as `make sim` does, and after a collection in steady state it counts every allocated block: by the type of
the object (classes by name), or for untyped blocks by what they are (bytecode, names, dict tables, constant
tables, instance member tables, list arrays, str text, bytearray data, other raw data).

    python scripts/heapcensus.py                      # entry path (--gnss modem, no AT log), 256K, census at 25 s
    python scripts/heapcensus.py --heap 128K --at 20 --sim-args "--cut-network 10:10"
    python scripts/heapcensus.py --strings             # and the text of every str object (not interned)
    python scripts/heapcensus.py --objects             # and each instance's member table, the dicts by size

The diagnostic interpreter is built once into build/mpdiag (~1-2 min; needs gcc-multilib like make venv's);
the tests and make sim never use it. Figures are the ESP32's word size; they are what the heap holds, so
they add up to gc.mem_alloc().
"""
import argparse
import os
import re
import shlex
import subprocess
import sys
import tarfile
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC_TAR = os.path.join(ROOT, "..", "shared", "micropython", "micropython-1.28.0.tar.xz")
CENSUS_C = os.path.join(ROOT, "scripts", "heapcensus", "census.c")
# micropython.mem_info(2) reaches the census (mem_info(1) stays the block map): the one line changed in
# py/modmicropython.c
_MEMINFO = "    if (n_args == 1) {\n        // arg given means dump gc allocation table\n"
_MEMINFO2 = ("    if (n_args == 1 && mp_obj_get_int(args[0]) == 2) {\n"
             "        extern void gc_census(const mp_print_t *print);\n"
             "        gc_census(&mp_plat_print);\n"
             "    } else if (n_args == 1) {\n        // arg given means dump gc allocation table\n")


def build(out):
    """build/mpdiag/micropython, unless it is newer than census.c -> its path."""
    exe = os.path.join(out, "micropython")
    if os.path.exists(exe) and os.path.getmtime(exe) >= os.path.getmtime(CENSUS_C):
        return exe
    if not os.path.exists(SRC_TAR):
        sys.exit("heapcensus: %s not found (the MicroPython source ../shared provides)" % SRC_TAR)
    os.makedirs(out, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        print("heapcensus: building the diagnostic interpreter into %s (once)" % out, file=sys.stderr)
        with tarfile.open(SRC_TAR) as t:
            t.extractall(work)
        src = os.path.join(work, "micropython-1.28.0")
        with open(os.path.join(src, "py", "gc.c"), "a") as f, open(CENSUS_C) as c:
            f.write("\n" + c.read())
        p = os.path.join(src, "py", "modmicropython.c")
        with open(p) as f:
            s = f.read()
        if _MEMINFO not in s:
            sys.exit("heapcensus: py/modmicropython.c is not the v1.28.0 text this tool patches")
        with open(p, "w") as f:
            f.write(s.replace(_MEMINFO, _MEMINFO2, 1))
        lib = os.path.join(src, "lib", "micropython-lib")  # (no frozen micropython-lib package: as build-unix32.sh)
        os.makedirs(lib, exist_ok=True)
        with open(os.path.join(lib, "README.md"), "w") as f:
            f.write("not used\n")
        man = os.path.join(work, "manifest.py")
        with open(man, "w") as f:
            f.write('include("$(MPY_DIR)/extmod/asyncio")\n')  # as ../shared/micropython/build-unix32.sh
        jobs = str(os.cpu_count() or 2)
        subprocess.run(["make", "-s", "-C", os.path.join(src, "mpy-cross"), "-j" + jobs], check=True,
                       stdout=subprocess.DEVNULL)
        subprocess.run(["make", "-s", "-C", os.path.join(src, "ports", "unix"), "-j" + jobs, "BUILD=build-32",
                        "MICROPY_PY_FFI=0", "MICROPY_PY_SSL=0", "MICROPY_PY_BTREE=0", "FROZEN_MANIFEST=" + man,
                        "CFLAGS_EXTRA=-m32", "LDFLAGS_EXTRA=-m32"], check=True, stdout=subprocess.DEVNULL)
        os.replace(os.path.join(src, "ports", "unix", "build-32", "micropython"), exe)
    return exe


def parse(text):
    """The last census in a firmware log -> (kinds {kind: (count, bytes)}, classes [name, ...]). A census is its
    "CENSUS class" lines (printed during the pass) followed by its kind lines, "CENSUS raw(other)" first."""
    i = text.rfind("CENSUS raw(other)")
    if i < 0:
        return None, None
    classes = []
    for ln in reversed(text[:i].splitlines()):
        if ln.startswith(("CENSUS_STR ", "CENSUS_INST ", "CENSUS_DICT ", "CENSUS_GEN ")):
            continue  # (--strings, --objects: printed in the same pass)
        m = re.match(r"^CENSUS class (\S*)$", ln)
        if not m:
            break
        classes.insert(0, m.group(1))
    kinds = {}
    for ln in text[i:].splitlines():
        m = re.match(r"^CENSUS (type (\S*)|\S+) (\d+) (\d+)$", ln)
        if not m:
            continue
        k = "type %s" % (m.group(2) or "?") if m.group(2) is not None else m.group(1)
        c, b = kinds.get(k, (0, 0))
        kinds[k] = (c + int(m.group(3)), b + int(m.group(4)))
    return kinds, classes


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--heap", default="256K")
    ap.add_argument("--at", type=float, default=25.0, help="seconds of running before the census")
    ap.add_argument("--sim-args", default="--gnss modem --no-at-log", help="more scripts/sim.py arguments")
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "census-run"))
    ap.add_argument("--log", help="only read the census of this firmware.log (no run)")
    ap.add_argument("--strings", action="store_true", help="list the str objects (length, first 40 characters)")
    ap.add_argument("--objects", action="store_true",
                    help="list the instances of Python classes (member table slots) and the dicts by table size")
    a = ap.parse_args(argv)
    if a.log:
        with open(a.log) as f:
            return report(f.read(), a)
    exe = build(os.path.join(ROOT, "build", "mpdiag"))
    env = dict(os.environ, FM_MPBIN=exe, FM_HEAPPROF=str(a.at), FM_HEAPMAP="2")
    if a.strings:
        env["FM_CENSUS_STR"] = "1"
    if a.objects:
        env["FM_CENSUS_OBJ"] = "1"
    cmd = [sys.executable, os.path.join(ROOT, "scripts", "sim.py"), "--duration", str(int(a.at + 3)),
           "--heap", a.heap, "--out", a.out] + shlex.split(a.sim_args)
    subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(os.path.join(a.out, "firmware.log")) as f:
        return report(f.read(), a)


def report(text, a):
    kinds, classes = parse(text)
    if kinds is None:
        sys.exit("heapcensus: no census in the firmware log (did the run reach %.0f s?)" % a.at)
    total = sum(b for k, (c, b) in kinds.items() if not k.startswith("rawhist"))
    print("live heap by kind, %s after %.0f s (32-bit; bytes incl. block rounding): %d B" % (a.heap, a.at, total))
    for k, (c, b) in sorted(kinds.items(), key=lambda kv: -kv[1][1]):
        if not k.startswith("rawhist"):
            print("  %-24s %5d  %7d  %4.1f%%" % (k, c, b, 100.0 * b / total))
    print("classes on the heap (%d): %s" % (len(classes), " ".join(classes)))
    end = text.rfind("CENSUS raw(other)")  # the last census only: from its probe line to its kind lines
    # (a line that starts with it: the probe's own line is a str object too, listed with --strings)
    last = text[max(0, text.rfind('\n{"heapprof"', 0, end)):end]
    if getattr(a, "objects", False):
        # a member table or a dict table of n slots costs 8 * n bytes (rounded up to 16) beside its object
        inst = re.findall(r"^CENSUS_INST (\S+) (\d+) (\d+)$", last, re.M)
        by = {}
        for c, n, u in inst:
            k = by.setdefault(c, [0, 0, 0])
            k[0] += 1
            k[1] += -(-8 * int(n) // 16) * 16
            k[2] += int(u)
        print("instances (%d), by class: count, member table bytes, members" % len(inst))
        for c, (k, b, u) in sorted(by.items(), key=lambda kv: -kv[1][1]):
            print("  %-22s %4d  %6d  %5d" % (c, k, b, u))
        gens = re.findall(r"^CENSUS_GEN (\S+) (\d+) (\d+)$", last, re.M)
        print("coroutines (%d), largest first: function, frame slots, bytes" % len(gens))
        for f, n, b in sorted(gens, key=lambda g: -int(g[2])):
            print("  %-24s %4s  %5s" % (f, n, b))
        dicts = re.findall(r"^CENSUS_DICT (\d+) (\d+)$", last, re.M)
        sizes = {}
        for n, u in dicts:
            k = sizes.setdefault(int(n), [0, 0])
            k[0] += 1
            k[1] += int(u)
        print("dicts (%d), by table slots: slots, count, table bytes, entries" % len(dicts))
        for n, (k, u) in sorted(sizes.items(), reverse=True):
            print("  %5d  %4d  %6d  %5d" % (n, k, k * (-(-8 * n // 16) * 16), u))
    if a.strings:
        strs = re.findall(r"^CENSUS_STR (\d+) (.*)$", last, re.M)
        print("str objects (%d), longest first:" % len(strs))
        for n, t in sorted(strs, key=lambda x: -int(x[0])):
            print("  %5s %r" % (n, t))


if __name__ == "__main__":
    main()
