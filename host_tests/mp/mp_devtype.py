# The co-processor tells the board model (ATI -> devType); the board file's per-devType overrides
# are applied before the modem UART opens (devType 13 has the modem on RX 32 / TX 33).
from board import BoardError
from board import load_board as _load
from board.host import HostBoard
from mptest import raises

from telelogger.assembly import _identify


def _board(name):
    # the suite runs from build/mptests under MicroPython, from the repo root on CPython
    return _load(name, None, ("boards", "../../boards"))


class _Obd:
    def __init__(self, devtype, model="B", text="OBD2USART V1.3"):
        self.r = (devtype, model, text)

    async def device_type(self):
        if isinstance(self.r, Exception):
            raise self.r
        return self.r


async def test_devtype_13_moves_the_modem_before_it_opens():
    b = HostBoard(_board("oneplus-b"))
    assert b.desc["modem"]["rx"] == 35
    await _identify(b, _Obd(13))
    assert (b.desc["modem"]["rx"], b.desc["modem"]["tx"]) == (32, 33)
    assert b.desc["gnss"]["rx"] == 32 and b.desc["devtype"] == 13  # devType <= 13: GNSS on RXD2 32
    assert b.desc["battery"]["source"] == "adc"  # the ATRV battery is for devType <= 12 only


async def test_devtype_14_keeps_the_file_pins():
    b = HostBoard(_board("oneplus-b"))
    await _identify(b, _Obd(14, text="OBD2USART V1.4"))
    assert b.desc["modem"]["rx"] == 35 and b.desc["battery"]["source"] == "adc"


async def test_silent_coprocessor_leaves_the_board_alone():
    b = HostBoard(_board("oneplus-b"))
    o = _Obd(0)
    o.r = OSError("timeout")
    await _identify(b, o)
    assert b.desc["modem"]["rx"] == 35 and "devtype" not in b.desc


def test_an_open_uart_cannot_move():
    b = HostBoard(_board("oneplus-b"))
    b._streams["modem"] = object()  # the modem UART is already open
    e = raises(BoardError, b.apply_devtype, 13)
    assert "modem" in str(e) and "already open" in str(e)


def test_coproc_reset_line_is_released_before_the_link_is_used():
    from telelogger.assembly import _release_coproc_reset

    b = HostBoard(_board("oneplus-b"))
    assert "coproc.reset" not in b._pins  # a board leaves the line alone until asked
    _release_coproc_reset(b)
    pin = b._pins["coproc.reset"]  # driven now, not just described
    assert pin.value() == 0  # logically not in reset
    assert pin.pin.value() == 1  # GPIO15 HIGH: the line is active LOW


def test_the_command_counter_lives_beside_the_queue_not_in_it():
    import os

    from telelogger.assembly import cmd_counter_path

    root = "/tmp/mpq-" + "".join("%02x" % b for b in os.urandom(5))  # not the working tree
    os.mkdir(root)
    with open(root + "/cmd_n", "w") as f:  # where an older build kept it
        f.write("41")
    path = cmd_counter_path(root)
    assert path == root + "_cmd_n"  # deploy --wipe-queue removes the folder, not this
    with open(path) as f:
        assert f.read() == "41"  # moved, not reset
    assert cmd_counter_path(root) == path
    os.remove(path)
    os.rmdir(root)
