# Which build the board runs (telelogger/FORMAT.md "OTA updates"): the deployed tree at the filesystem root (slot "-",
# always complete: only `make deploy` writes it) or an OTA slot folder /ota/a or /ota/b that
# telelogger.ota filled and verified. Boot only: main.py imports this, calls select() and it leaves
# sys.modules again; mark_healthy() and info() are imported, called and dropped the same way.
# Paths: root "/" on the board (absolute roots elsewhere: tests).
#
# Files under <root>ota/ (each replaced atomically: a temporary file renamed over it):
#   ptr     "SLOT VER PREV PVER TRIAL\n", e.g. "b 8 a 7 1": run slot b (version 8), on trial, the
#           previous build is slot a (version 7). The ONE file that switches builds. Absent: slot "-".
#   boots   boots of the build on trial so far ("2\n")
#   failed  "VER why\n": the last build that was rolled back and why (for the status)
#   <slot>/ok  "VER\n": the slot is complete and verified for that version (written before ptr)
import sys

# Boots on trial without mark_healthy(): the next boot rolls back to the previous build. 4, not 3:
# the first boot of a new build validates the config against its schema and restarts once
# (telelogger.configcache), so this leaves the build 3 real attempts.
K = 4
TRIAL_S = 600  # the loop resets a build on trial that has not been marked healthy by then (FORMAT.md "OTA updates")
ROOT_SLOT = "-"


def _p(root, name):
    # <root>ota/<name>: one format for every file and slot folder (each "ota/..." literal was an interned name)
    return "%sota/%s" % (root, name)


def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def put(path, text):
    """Replace `path` atomically: the old content or the new one survives a power cut."""
    import os

    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)


def ptr(root="/"):
    """[slot, ver, prev, pver, trial] of <root>ota/ptr, None when absent, "bad" when unreadable."""
    t = _read(_p(root, "ptr"))
    if t is None:
        return None
    p = t.split()
    slots = (ROOT_SLOT, "a", "b")
    try:
        if len(p) == 5 and p[0] in slots and p[2] in slots:
            return [p[0], int(p[1]), p[2], int(p[3]), int(p[4])]
    except ValueError:
        pass
    return "bad"


def line(*p):
    """The ptr line of (slot, ver, prev, pver, trial)."""
    return "%s %d %s %d %d\n" % p


def complete(root, slot, ver):
    """The root tree always is; an OTA slot when its ok marker names `ver`."""
    if slot == ROOT_SLOT:
        return True
    t = _read("%sota/%s/ok" % (root, slot))
    return t is not None and t.strip() == str(ver)


def _boots(root):
    t = _read(_p(root, "boots"))
    if t is None:
        return 0
    t = t.strip()
    return int(t) if t.isdigit() else K  # damaged: count it as used up (fail towards the old build)


def _fail(root, ver, why):
    put(_p(root, "failed"), "%d %s\n" % (ver, why))


def choose(root="/"):
    """The slot to run, with the trial bookkeeping of this boot written first."""
    p = ptr(root)
    if p is None:
        return ROOT_SLOT
    if p == "bad":
        _fail(root, 0, "ota/ptr unreadable: running the deployed tree")
        return ROOT_SLOT
    slot, ver, prev, pver, trial = p
    if trial:
        n = _boots(root)
        if n >= K:  # rolled back: the record first, then the switch (a cut between repeats both)
            _fail(root, ver, "%d boots without a healthy status: rolled back to %d" % (n, pver))
            put(_p(root, "ptr"), line(prev, pver, ROOT_SLOT, 0, 0))
            slot, ver = prev, pver
        else:
            put(_p(root, "boots"), "%d\n" % (n + 1))
    if complete(root, slot, ver):
        return slot
    _fail(root, ver, "slot %s incomplete: running the deployed tree" % slot)
    return ROOT_SLOT


def select(root="/"):
    """main.py: run the chosen slot. Its folder becomes the current directory, first on sys.path as
    "" (so a module's __file__ is "telelogger/loop.mpy" as build.py compiles its name: one interned
    name per module, as in the deployed tree), the deployed tree next (what a slot lacks, e.g.
    /lib). The modules imported from the deployed tree so far (this one, its package) are
    forgotten, so that the app imports from the slot."""
    try:
        s = choose(root)
        if s != ROOT_SLOT:
            import os

            base = root if root[:1] == "/" else os.getcwd().rstrip("/") + "/" + root
            os.chdir(_p(base, s))
            while "" in sys.path:
                sys.path.remove("")
            sys.path[:0] = ["", base.rstrip("/") or "/"]
        return s
    finally:
        for m in ("telelogger.otaboot", "telelogger"):
            sys.modules.pop(m, None)


def fallback(e, root="/"):
    """main.py: the slot chosen at this boot could not import the app (`e`); the caller forgot its
    modules and changed to the root. This boot runs the deployed tree; the failure is recorded and
    a build on trial is rolled back for the next boot (one that was healthy is tried again)."""
    p = ptr(root)
    if isinstance(p, list):
        _fail(root, p[1], "the app did not start: %r" % (e,))
        if p[4]:
            put(_p(root, "ptr"), line(p[2], p[3], ROOT_SLOT, 0, 0))
    base = root.rstrip("/") or "/"
    while "" in sys.path:
        sys.path.remove("")
    while base in sys.path:
        sys.path.remove(base)
    sys.path.insert(0, "")
    for m in ("telelogger.otaboot", "telelogger"):
        sys.modules.pop(m, None)


def mark_healthy(root="/"):
    """The build on trial connected and published a healthy status: it stays. -> True if it was on
    trial (now no longer), False otherwise. Raises OSError when the flash cannot be written."""
    p = ptr(root)
    if not isinstance(p, list) or not p[4]:
        return False
    put(_p(root, "ptr"), line(p[0], p[1], p[2], p[3], 0))
    try:
        import os

        os.remove(_p(root, "boots"))
    except OSError:
        pass
    return True


def running(root="/"):
    """The slot this interpreter runs (select() made its folder the current directory)."""
    import os

    d = os.getcwd().rstrip("/")
    pre = _p(root, "")
    if d.startswith(pre) and len(d) == len(pre) + 1 and d[-1] in "ab":
        return d[-1]
    return ROOT_SLOT


def info(root="/"):
    """For the status: {"ver": installed version (0: the deployed tree), "slot", "trial": boots on
    trial so far (0: not on trial), "failed": "VER why" of the last rollback or None}."""
    p = ptr(root)
    s = running(root)
    f = _read(_p(root, "failed"))
    d = {"ver": 0, "slot": s, "trial": 0, "failed": f.strip() if f else None}
    if isinstance(p, list) and p[0] == s:
        d["ver"] = p[1]
        if p[4]:
            d["trial"] = _boots(root)
    elif isinstance(p, list) and p[2] == s:
        d["ver"] = p[3]
    return d
