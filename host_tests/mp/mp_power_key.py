# board.host: the modem power-key pin carried out of the process (run_host.py --power-key PATH), both runtimes.
import os

from board import load_board as _load
from board.host import HostBoard

# the suite runs from build/mptests under MicroPython, from the repo root on CPython
DIRS = ("boards", "../../boards")


def load_board(name):
    return _load(name, None, DIRS)


def _path(name):
    p = "/tmp/mp_power_key_%s_%s" % (name, "".join("%02x" % b for b in os.urandom(5)))  # unique per run (no getpid on MicroPython)
    try:
        os.remove(p)
    except OSError:
        pass
    return p


def _read(p):
    with open(p) as f:
        return f.read()


def test_each_change_of_the_key_is_one_line_flushed_at_once():
    p = _path("lines")
    hb = HostBoard(load_board("oneplus-b"), power_key=p)
    key = hb.modem_power_pin()
    key.value(1)
    assert _read(p) == "1\n"  # flushed: readable while the key is still held
    key.value(1)  # no change of the pin: no line
    key.value(0)
    key.value(0)
    key.value(1)
    key.value(0)
    assert _read(p) == "1\n0\n1\n0\n"
    os.remove(p)


def test_pressed_is_the_active_level_whatever_the_polarity():
    p = _path("polarity")
    desc = load_board("oneplus-b")
    desc["modem_power"] = dict(desc["modem_power"], active=0)  # PWRKEY wired directly: pressed = LOW
    hb = HostBoard(desc, power_key=p)
    key = hb.modem_power_pin()
    assert hb.fake_pin("modem_power").value() == 1  # released on creation: the pin HIGH
    key.value(1)
    assert hb.fake_pin("modem_power").value() == 0 and _read(p) == "1\n"
    key.value(0)
    assert _read(p) == "1\n0\n"
    os.remove(p)


def test_appends_to_a_file_a_follower_already_watches_and_other_pins_stay_out():
    p = _path("append")
    with open(p, "w") as f:
        f.write("1\n0\n")  # an earlier run's history
    hb = HostBoard(load_board("oneplus-b"), power_key=p)
    hb.led().value(1)  # another output: not the power key
    hb.coproc_reset_pin().value(1)
    assert _read(p) == "1\n0\n"
    hb.modem_power_pin().value(1)
    assert _read(p) == "1\n0\n1\n"
    os.remove(p)


def test_without_a_path_nothing_is_written():
    hb = HostBoard(load_board("oneplus-b"))
    hb.modem_power_pin().value(1)
    hb.modem_power_pin().value(0)
    assert hb.fake_pin("modem_power").listeners == []  # nothing listens: no file, no cost
    assert [lv for lv, _ in hb.fake_pin("modem_power").history] == [0, 1, 0]
