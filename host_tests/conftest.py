import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
for p in (os.path.join(ROOT, "firmware"), HERE, os.path.join(HERE, "mp"), ROOT):
    if p not in sys.path:
        sys.path.insert(0, p)


def pytest_configure(config):
    config.addinivalue_line("markers", "micropython: runs firmware under the MicroPython unix interpreter")
    config.addinivalue_line("markers", "slow: long-running (soak); excluded from make test")


# Property tests: `make test` runs a fixed (derandomized) set of examples, so CI is reproducible
# and a green main stays green; `make fuzz` explores fresh random inputs with many more examples
# (HYPOTHESIS_PROFILE=explore) — run it when touching a parser, and turn what it finds into a
# regression test.
try:
    from hypothesis import settings as _hs

    _hs.register_profile("ci", derandomize=True, database=None, print_blob=True)
    _hs.register_profile("explore", derandomize=False, print_blob=True)
    _hs.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
except ImportError:  # hypothesis is in the venv; keep conftest importable without it
    pass
