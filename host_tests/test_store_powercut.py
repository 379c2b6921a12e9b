"""The store's power-cut runs on LittleFS with a random seed (host_tests/mp/lfsflash.py under the
host MicroPython; the fixed-seed cut at every write is in mp/mp_store_lfs.py), and the flash-wear
estimate of `make bench` (scripts/benchlib/flash_wear.py).

Each run prints its seed; replay one with POWERCUT_SEED=<seed> pytest ... or directly:
    MICROPYPATH=build/fw-mpy:host_tests/mp micropython -X heapsize=8M host_tests/mp/lfsflash.py SEED RECORDS [SAMPLE]
"""
import os
import random
import re
import sys

import pytest

from mphost import MP_TESTS, ROOT, run_mp

sys.path.insert(0, os.path.join(ROOT, "scripts", "benchlib"))
import flash_wear  # noqa: E402

LFSFLASH = os.path.join(MP_TESTS, "lfsflash.py")


def _seed():
    s = os.environ.get("POWERCUT_SEED")
    return int(s) if s else random.randrange(1, 2**31)


def _cut_run(seed, records, sample, timeout=600, heap="16M"):
    # the heap holds the recorded run: every write's bytes (littlefs copies a 4 KB block per append)
    print("power-cut seed %d: replay with POWERCUT_SEED=%d" % (seed, seed))
    out = run_mp(LFSFLASH, [seed, records, sample], heap=heap, timeout=timeout, extra_path=(MP_TESTS,), check=False)
    m = re.search(r"POWERCUT_RESULT seed=(\d+) writes=(\d+) erases=(\d+) checked=(\d+) failed=(\d+) overprog=(\d+)"
                  r" acks=(\d+) reboots=(\d+) dropped=(\d+)", out)
    assert m, "no result from the power-cut run (seed %d):\n%s" % (seed, out[-3000:])
    r = dict(zip(("seed", "writes", "erases", "checked", "failed", "overprog", "acks", "reboots", "dropped"),
                 (int(x) for x in m.groups())))
    assert r["failed"] == 0, "seed %d: %d of %d cuts failed:\n%s" % (seed, r["failed"], r["checked"], out[-3000:])
    assert r["overprog"] == 0, r  # littlefs never programs cells that are not erased
    return r


def test_power_cut_random_seed_sample():
    seed = _seed()
    r = _cut_run(seed, 400, 1000)
    assert r["checked"] == 1000 and r["acks"] > 0 and r["dropped"] > 0, r


@pytest.mark.slow
def test_power_cut_random_seeds_thousands_of_positions():
    seed = _seed()
    total = 0
    for k in range(4):
        r = _cut_run(seed + k, 1500, 3000, timeout=1200, heap="128M")
        assert r["checked"] == 3000 and r["reboots"] > 0 and r["dropped"] > 0, r
        total += r["checked"]
    assert total == 12000


def test_lifetime_formula():
    # 512 blocks x 100k cycles / (1000 erases/h x 8 h x 365 d)
    assert abs(flash_wear.lifetime_years(1000, 512) - 512 * 100000 / 1000 / 2920.0) < 1e-9
    assert flash_wear.lifetime_years(0, 512) == float("inf")
    assert flash_wear.lifetime_years(2000, 512) * 2 == pytest.approx(flash_wear.lifetime_years(1000, 512))


def test_flash_wear_counts_erases_and_a_ram_window_reduces_them():
    d = flash_wear.estimate(600, 0)
    assert d["records"] == 600 and d["acks"] == 60, d  # 1 record/s, a batch every 10 s (batch.max_age_ms)
    assert 30 <= d["record_bytes"] <= 200, d
    assert d["overprog"] == 0 and 0 < d["static_blocks"] < 512, d
    # littlefs copies the tail block of an appended file at every sync: about an erase per record
    assert 0.5 * d["records"] < d["erases"] < 2 * d["records"], d
    assert d["lifetime_years"] == pytest.approx(flash_wear.lifetime_years(d["erases_per_hour"], d["free_blocks"]))
    w = flash_wear.estimate(600, 5, d["static_blocks"] * 4096)
    assert w["records"] == 600 and w["acks"] > 0, w
    assert w["erases"] < d["erases"] / 3, (w["erases"], d["erases"])


def test_bench_rows_report_erases_and_lifetime_at_the_default_sync_window():
    rows, data = flash_wear.bench_flash_wear(quick=True)
    names = [r["metric"] for r in rows]
    assert names[0].startswith("flash erases per hour") and names[1].startswith("flash lifetime"), names
    assert float(rows[0]["value"]) == pytest.approx(data["default"]["erases_per_hour"])
    assert data["window_s"] == 5 and "loses at most the last 5 s" in rows[0]["note"]
    # the firmware's default write pattern meets the 10-year target; a sync per record did not
    assert data["default"]["lifetime_years"] >= flash_wear.TARGET_YEARS, data["default"]
    assert data["per_record"]["erases_per_hour"] > 2 * data["default"]["erases_per_hour"]
