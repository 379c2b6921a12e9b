#!/usr/bin/env python3
"""Heap cost of importing firmware modules, measured as a stock ESP32 pays it: the modules compiled
to .mpy (mpy-cross -O2, as `make build`) and imported from the filesystem, so their bytecode lives
in the GC heap, under the host MicroPython (the 32-bit build from `make venv`: the ESP32's word size).

    python scripts/memprobe.py                      # the telelogger's modules, in boot order
    python scripts/memprobe.py at.engine modem.cmqtt # these, in this order
    python scripts/memprobe.py --json

Each figure is the growth of gc.mem_alloc() (after gc.collect()) when the module is imported after
the ones above it, so a module's row includes what it pulls in that was not imported yet.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
sys.path.insert(0, os.path.join(ROOT, "host_tests"))

# What stays imported on the device while the cellular telelogger runs with the shipped default
# (gnss.source "modem"), in the order boot imports it: the preload list of telelogger/appboot.py
# (modules(cfg)), read from the firmware so the two cannot differ. Boot-only modules (telelogger.assembly,
# the config validator, board.desc, modem.power, the bring-up and TLS set-up steps) are imported and
# dropped again, so they are not in it; `make bench` measures the real entry path too.
def entry_modules():
    sys.path.insert(0, os.path.join(ROOT, "firmware"))
    try:
        from telelogger.appboot import modules
    finally:
        sys.path.pop(0)
    out = ["core.compat"]
    ms = modules({"gnss": {"source": "modem"}})
    if "net.cellular" in ms:
        out.append("~telelogger.names")  # as preload_resident: imported (its names interned) and forgotten first
    for m in ms:
        if m not in out:
            out.append(m)
    return out


ENTRY_MODULES = entry_modules()

PROBE = r"""
import gc, sys, micropython
mods = sys.argv[1:]  # run with -c: argv[0] is "-c" (the unix port interns argv: the names are counted before)
names = 1 if mods[:1] == ["--names"] else 0
if names:
    mods = mods[1:]
gc.collect()
base = gc.mem_alloc()
prev = base
micropython.qstr_info(names)
for m in mods:
    drop = m[:1] == "~"  # "~name": imported, then forgotten (sys.modules and its package), as the boot does
    m = m.lstrip("~")
    try:
        __import__(m)
    except Exception as e:
        print("ERR %s %r" % (m, e))
        break
    if drop:
        del sys.modules[m]
        p, _, a = m.rpartition(".")
        if p in sys.modules:
            delattr(sys.modules[p], a)
    gc.collect()
    a = gc.mem_alloc()
    print("MOD %s %d" % (m, a - prev))
    micropython.qstr_info(names)  # "qstr pool: ... n_qstr=N ..." (and with names, every dynamic one)
    prev = a
print("TOTAL %d" % (prev - base))
print("BITS %d" % (32 if sys.maxsize < 2 ** 32 else 64))
"""


def micropython_bin():
    exe = os.path.join(os.path.dirname(sys.executable), "micropython")
    return exe if os.path.exists(exe) else "micropython"


def measure(modules, firmware=None, heap="1M", names=None):
    """[(module, bytes)], total bytes, word bits. `firmware`: a folder of .mpy files (default: a fresh
    -O2 build of firmware/). `names`: a dict filled with module -> [the interned names (qstrs) its
    import added] (never freed on MicroPython; ~22 bytes each with the pool's table)."""
    with tempfile.TemporaryDirectory() as tmp:
        if firmware is None:
            import build

            firmware = os.path.join(tmp, "fw")
            build.build(out=firmware)
        # imported as on the device: from the current folder (sys.path ''), so each module's __file__
        # is the name compiled into it (scripts/build.py source_name) and the two are one interned name
        env = dict(os.environ, MICROPYPATH=":.frozen")
        p = subprocess.run([micropython_bin(), "-X", "heapsize=%s" % heap, "-c", PROBE]
                           + (["--names"] if names is not None else []) + list(modules), env=env,
                           capture_output=True, text=True, timeout=60, cwd=firmware)
    rows, total, bits = [], 0, 0
    dumps = []  # per qstr_info call: [n_qstr, names]; its "qstr pool:" line comes before its Q(...) lines
    for line in (p.stdout + p.stderr).splitlines():
        parts = line.split()
        if line.startswith("Q(") and line.endswith(")") and dumps:
            dumps[-1][1].add(line[2:-1])
        elif line.startswith("qstr pool:"):
            dumps.append([int(line.split("n_qstr=")[1].split(",")[0]), set()])
            if rows:
                rows[-1] = rows[-1][:2] + (dumps[-1][0],)
        elif parts[:1] == ["MOD"]:
            rows.append((parts[1], int(parts[2]), 0))
        elif parts[:1] == ["TOTAL"]:
            total = int(parts[1])
        elif parts[:1] == ["BITS"]:
            bits = int(parts[1])
        elif parts[:1] == ["ERR"]:
            raise RuntimeError("import failed: " + line)
    if names is not None:
        for (m, _, _), before, after in zip(rows, dumps, dumps[1:]):
            names[m] = sorted(after[1] - before[1])
    return rows, total, bits


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("modules", nargs="*", help="modules in import order (default: the telelogger's)")
    ap.add_argument("--firmware", help="folder of .mpy files (default: a fresh build)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--names", action="store_true", help="list the interned names each import added")
    a = ap.parse_args(argv)
    added = {} if a.names else None
    rows, total, bits = measure(a.modules or ENTRY_MODULES, a.firmware, names=added)
    if a.json:
        print(json.dumps({"bits": bits, "modules": {m: n for m, n, _ in rows}, "total": total,
                          "names": rows[-1][2] if rows else 0, "added": added}))
        return
    print("heap cost of importing .mpy on the %d-bit MicroPython (gc.mem_alloc after collect; "
          "names: interned names in the pool after the import)" % bits)
    for m, n, q in rows:
        print("  %-24s %7.1f KB %6d names" % (m, n / 1024, q))
        if added is not None:
            print("      " + " ".join(added.get(m, [])))
    print("  %-24s %7.1f KB" % ("total", total / 1024))


if __name__ == "__main__":
    main()
