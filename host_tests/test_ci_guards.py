"""What CI must not do silently: run the MicroPython half on the 64-bit wheel when the 32-bit
interpreter can be built, or pass a test that was skipped for a missing dependency."""
import os
import subprocess
import sys

import pytest
from conftest import dep_skip_reason
from mphost import ROOT, micropython_bin

SHARED_MP = os.path.join(ROOT, "..", "shared", "micropython", "build-unix32.sh")


def test_micropython_is_32_bit_where_it_can_be_built():
    out = subprocess.run([micropython_bin(), "-c", "import sys; print(sys.maxsize)"], capture_output=True, text=True,
                         timeout=30).stdout.strip()
    bits = 32 if int(out) < 2 ** 32 else 64
    if not os.path.exists(SHARED_MP):
        pytest.skip("design: no ../shared/micropython here, the 64-bit wheel is the documented fallback")
    assert bits == 32, "micropython on PATH is %d-bit although ../shared/micropython can build the 32-bit one" % bits


@pytest.mark.parametrize("reason,dep", [
    ("mosquitto not installed", True), ("needs mosquitto_passwd", True), ("seed fixture not present", True),
    ("needs ptys", True), ("No module named 'paho'", True),
    ("no hmac module (MicroPython): covered by the RFC 4231 vectors", False),
    ("CPython only: the SIM7600 simulator (host_tests/peers) is CPython code", False),
])
def test_dependency_skips_are_recognised(reason, dep):
    assert dep_skip_reason(reason) is dep


def test_a_dependency_skip_fails_under_ci(tmp_path):
    (tmp_path / "test_x.py").write_text("import pytest\n\ndef test_a():\n    pytest.skip('mosquitto not installed')\n"
                                        "\ndef test_b():\n    pytest.skip('CPython only: by design')\n")
    (tmp_path / "conftest.py").write_text(open(os.path.join(ROOT, "host_tests", "conftest.py")).read())
    env = dict(os.environ, FAIL_ON_DEP_SKIP="1", PYTHONPATH=os.path.join(ROOT, "host_tests"))
    p = subprocess.run([os.path.join(os.path.dirname(sys.executable), "pytest"), "-q", "-p", "no:cacheprovider",
                        str(tmp_path)], capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=120)
    assert "1 failed, 1 skipped" in p.stdout, p.stdout[-2000:]
