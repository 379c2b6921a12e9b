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
