"""The firmware's import graph, read from the sources (every import, the lazy ones inside functions
included): no circle, and no edge from a lower layer to a higher one (core < at < modem < net;
obdii and gnss beside modem; board beside at; telelogger above them all; hwcheck, the on-board check, on top)."""
import ast
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIRMWARE = os.path.join(ROOT, "firmware")
LAYER = {"core": 0, "at": 1, "board": 1, "modem": 2, "obdii": 2, "gnss": 2, "net": 3, "telelogger": 4, "hwcheck": 5,
         "main": 6, "boot": 6}


def modules():
    out = {}
    for dp, _ds, fs in os.walk(FIRMWARE):
        for f in fs:
            if f.endswith(".py"):
                p = os.path.join(dp, f)
                name = os.path.relpath(p, FIRMWARE)[:-3].replace(os.sep, ".")
                out[name[:-9] if name.endswith(".__init__") else name] = p
    return out


def graph():
    mods = modules()
    g = {}
    for m, p in mods.items():
        deps = set()
        for n in ast.walk(ast.parse(open(p).read())):
            if isinstance(n, ast.Import):
                deps.update(a.name for a in n.names)
            elif isinstance(n, ast.ImportFrom) and n.module and n.level == 0:
                deps.add(n.module)
                deps.update(n.module + "." + a.name for a in n.names)
        g[m] = {d for d in deps if d in mods and d != m}
    return g


def test_every_module_is_found():
    g = graph()
    assert {"at.engine", "modem.cmqtt", "telelogger.loop", "board.esp32", "hwcheck"} <= set(g)
    assert "at.reader" in g["at.engine"] and "at.atlog" in g["at.engine"]  # top-level and lazy edges both seen


def test_no_import_circle():
    g = graph()
    state, cycles = {}, []

    def visit(u, path):
        state[u] = 1
        path.append(u)
        for v in sorted(g[u]):
            if state.get(v) == 1:
                cycles.append(" -> ".join(path[path.index(v):] + [v]))
            elif v not in state:
                visit(v, path)
        path.pop()
        state[u] = 2

    for m in sorted(g):
        if m not in state:
            visit(m, [])
    assert not cycles, cycles


def test_no_edge_from_a_lower_layer_to_a_higher_one():
    g = graph()
    bad = []
    for u, deps in g.items():
        pu = u.split(".")[0]
        for v in deps:
            pv = v.split(".")[0]
            if pv != pu and LAYER[pv] >= LAYER[pu]:
                bad.append("%s -> %s" % (u, v))
    assert not bad, sorted(bad)


def test_only_the_board_layer_imports_machine():
    users = []
    for m, p in modules().items():
        for n in ast.walk(ast.parse(open(p).read())):
            names = [a.name for a in n.names] if isinstance(n, ast.Import) else (
                [n.module] if isinstance(n, ast.ImportFrom) and n.module else [])
            if "machine" in names and not m.startswith("board."):
                users.append(m)
    assert not users, users
