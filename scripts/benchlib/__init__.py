"""Helpers of scripts/bench.py. mp_bench.py runs under the host MicroPython (and CPython)."""
