"""The heap the OBD and GNSS modules cost on the 32-bit MicroPython (the ESP32's word size), as a stock
ESP32 pays it (.mpy loaded from the filesystem), kept below bounds so a regression fails here rather
than on the device. Figures when this was written (after core.compat): obdii.elm + obdii.obd (with
pids) 7.2 KB (10.4 before the rare Obd methods went to obdii.adapter/diag and the ELM messages to
elmtext; 18.9 before the first split); modem GNSS path 9.4 KB (10.9 before gnss.base joined gnss.fix and
the AT+CGPS switching went to gnss.cgps), UART path 8.7 KB (11.1), co-processor path 8.0 KB (9.9).
Also checks that the rare paths leave the heap after use."""
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "scripts"))

import memprobe  # noqa: E402

BITS_32 = "32-bit MicroPython (make venv) needed for the ESP32's figures"


@pytest.fixture(scope="module")
def firmware(tmp_path_factory):
    import build

    out = str(tmp_path_factory.mktemp("fw"))
    build.build(out=out)
    return out


def _cost(firmware, modules):
    rows, total, bits = memprobe.measure(["core.compat"] + modules, firmware)
    if bits != 32:
        pytest.fail(BITS_32 + ", got %d-bit" % bits)
    return total - rows[0][1], rows


@pytest.mark.parametrize("modules,limit_kb", [
    (["obdii.elm", "obdii.obd"], 8),
    (["gnss.sources", "gnss.modem"], 10),
    (["gnss.sources", "gnss.nmea"], 9.5),  # UartGnss is in gnss.nmea
    (["gnss.sources", "gnss.coproc"], 9),
])
def test_import_cost_stays_bounded(firmware, modules, limit_kb):
    cost, rows = _cost(firmware, modules)
    assert cost <= limit_kb * 1024, "%s cost %.1f KB > %s KB: %s" % (modules, cost / 1024, limit_kb, rows)


def test_modem_source_does_not_load_the_nmea_parser_nor_the_other_sources(firmware):
    import subprocess

    script = ("import sys\nfrom gnss.sources import ModemGnss\nfrom obdii.obd import Obd\n"
              "print(sorted(m for m in sys.modules if m.startswith(('gnss', 'obdii'))))\n")
    env = dict(os.environ, MICROPYPATH=":".join([firmware, ".frozen"]))
    p = subprocess.run([memprobe.micropython_bin(), "-c", script], env=env, capture_output=True, text=True, timeout=60)
    loaded = p.stdout.strip()
    assert p.returncode == 0, p.stderr
    for m in ("gnss.nmea", "gnss.uart", "gnss.coproc", "gnss.cgps", "gnss.base", "gnss.sources", "obdii.pidtable",
              "obdii.diag", "obdii.adapter", "obdii.dtc", "obdii.elmtext"):
        assert "'%s'" % m not in loaded, loaded
    assert "'gnss.modem'" in loaded and "'obdii.obd'" in loaded, loaded
    assert "'obdii.pids'" not in loaded, loaded  # the PID scaling is obdii.obd's (obdii.pids: tools, config check)
