"""scripts/bench.py --quick runs end to end and writes its table (no timing is asserted: the
numbers are measurements, only their presence and shape are checked)."""
import json
import os
import subprocess
import sys

from mphost import ROOT

BENCH = os.path.join(ROOT, "scripts", "bench.py")
ROW_NAMES = ("size", "modules", "flash", "air", "bringup", "pipeline", "ceiling", "heap")
# "entry" (the entry path's smallest heap: several make-sim runs) is left to make bench: too long for make test


def test_bench_quick_writes_table(tmp_path):
    out = tmp_path / "bench-out"
    p = subprocess.run([sys.executable, BENCH, "--quick", "--samples", "200", "--out", str(out), "--only", ",".join(ROW_NAMES)],
                       capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-4000:]
    md = (out / "bench.md").read_text()
    assert "| metric | value | target | note |" in md
    assert md in p.stdout  # the table is printed too
    data = json.loads((out / "bench.json").read_text())
    rows = data["rows"]
    assert data["quick"] is True
    metrics = [r["metric"] for r in rows]
    for want in (".mpy size", "peak live heap", "smallest -X heapsize", "pipeline per sample, median",
                 "instructions per sample", "bytes on the air per sample value, compact",
                 "bytes on the air per sample value, json", "official firmware text", "power-on -> first publish",
                 "CMQTTSTART -> connected", "AT publish ceiling", "measured / physical", "import heap, at.engine (32-bit)",
                 "flash lifetime at 8 h/day"):
        assert any(want in m for m in metrics), "no row for %r in %s" % (want, metrics)
    for r in rows:
        assert set(r) == {"metric", "value", "target", "note"}
        assert r["value"] and "error" not in str(r["value"]), r
        assert "| %s |" % r["metric"] in md
    assert set(ROW_NAMES) <= set(data["data"])
    # every record published in the heap run reached the broker
    acked = [r for r in rows if r["metric"].startswith("records acked")][0]["value"]
    got, want = acked.split(" / ")
    assert int(got) == int(want) > 0
