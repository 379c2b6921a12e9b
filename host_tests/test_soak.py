"""Fault-injection soak (scripts/soak.py): the real telelogger against the SIM7600 simulator on virtual time,
with a random fault schedule per seed. Every run must lose nothing beyond the store's counted drop-oldest
drops, duplicate only after a fault, recover on its own and keep the watchdog fed.

The short version runs in `make test`; `make soak` runs the slow one (SOAK_RUNS seeds, SOAK_MINUTES simulated
minutes each) and writes soak-out/summary.json. Replay a failing seed: python scripts/soak.py --seed N --minutes M
"""
import os
import random
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))

import soak  # noqa: E402

OUT = os.path.join(ROOT, "soak-out")


def _check(results, out_name):
    tot = soak.write_summary(results, OUT) if out_name == "summary.json" else None
    if tot is None:
        tot = soak.summarize(results)
        os.makedirs(OUT, exist_ok=True)
        import json

        with open(os.path.join(OUT, out_name), "w") as f:
            json.dump({"totals": tot, "runs": results}, f, indent=1, sort_keys=True)
    print()
    print(soak.table(results, tot))
    bad = ["seed %d (%g min): %s" % (r["seed"], r["minutes"], "; ".join(r["problems"])) for r in results if r["problems"]]
    assert not bad, "replay with: python scripts/soak.py --seed N --minutes M\n" + "\n".join(bad)
    assert tot["losses"] == 0
    return tot


def test_soak_short_every_fault_kind():
    """A few seeds; one cycles through every fault kind so each is exercised on every `make test`."""
    seeds = [11, 23, 5077]
    extra = os.environ.get("SOAK_SEED")
    if extra:
        seeds.append(int(extra))
    results = [soak.run_one(seeds[0], 30, cycle=True)]
    results += [soak.run_one(s, 8) for s in seeds[1:]]
    tot = _check(results, "summary-short.json")
    assert set(tot["faults"]) == set(soak.KINDS), tot["faults"]  # every kind was really injected
    assert tot["records"] > 1000 and tot["delivered"] > 0
    assert sum(r["boots"] for r in results) > len(results)  # ESP32 reboots happened (same store continued)
    # the simulator's urc_between mode really put URCs between a reply's lines and its final result
    assert sum(r["urcs_between_placed"] for r in results) > 0, [(r["seed"], r["urc_between"]) for r in results]


@pytest.mark.slow
def test_soak_long():
    runs = int(os.environ.get("SOAK_RUNS", "20"))
    minutes = float(os.environ.get("SOAK_MINUTES", "60"))
    rng = random.Random(os.environ.get("SOAK_SEED"))
    seeds = [rng.randrange(1 << 30) for _ in range(runs)]
    results = [soak.run_one(s, minutes, cycle=(i % 4 == 0)) for i, s in enumerate(seeds)]
    tot = _check(results, "summary.json")
    assert tot["faults_total"] >= runs
