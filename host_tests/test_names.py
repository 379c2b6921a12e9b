"""Names (qstrs) are interned for good on MicroPython: a check that runs at a user's request must not intern
what it reads. Validating a config once interned one name per distinct character of its values and secrets
(iterating a str makes each character an interned one-character string), which pushed remote config_set past
the name pool's 1,260-entry table (a ~9 KB block: the "allocating 1280 bytes" MemoryError of test_fleet_e2e).
Here: a second validation, with a key and values of characters the first one never had, interns no name."""
import re

import pytest
from mphost import run_mp

pytestmark = pytest.mark.micropython

SCRIPT = r"""
import micropython
from telelogger import config

def cfg(key, dev, apn):
    return {"device_id": dev, "broker": {"host": "broker.fleet-one.net", "tls": False},
            "cellular": {"apn": apn}, "secrets": {"hmac_key": key}}

config.validate(cfg("abcdefghijklmnopqrstuvwxyz012345", "car-one_1", "internet.apn"), False)
print("FIRST")
micropython.qstr_info()
config.validate(cfg("QWERTYUIOPASDFGHJKLZXCVBNM6789!#", "ZZYX-987", "WAP.APN.Q"), False)
print("SECOND")
micropython.qstr_info()
"""


def _n(out, after):
    m = re.search(after + r"\s+qstr pool: n_pool=\d+, n_qstr=(\d+)", out)
    assert m, out[-2000:]
    return int(m.group(1))


def test_validating_a_config_interns_nothing_of_what_it_reads(tmp_path):
    script = tmp_path / "names.py"
    script.write_text(SCRIPT)
    out = run_mp(str(script), heap="256K")
    first, second = _n(out, "FIRST"), _n(out, "SECOND")
    assert second == first, "the second validation interned %d names" % (second - first)
