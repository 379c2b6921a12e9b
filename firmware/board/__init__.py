# Board descriptions and the pure helpers around them. Nothing here imports `machine`:
# this module runs on the host too (build/deploy/hwcheck tooling, tests).
#
#   desc = load_board("oneplus-b")            # boards/oneplus-b.json, validated (board.desc)
#   desc = load_board("oneplus-b", devtype=14) # with the per-devType pin overrides applied
#   device_id_from_mac(b"...6 bytes...")      # the official 8-character device id
#
# Here: what every board module shares while the device runs (BoardError, ActivePin, battery_volts);
# the submodules import these from the package, which imports none of them (no circle). Beside it:
# board.desc (boot only: schema, overrides, devType mapping, device id, make_board), board.esp32.Board
# (imports machine), board.host.HostBoard (unix port / CPython: serial paths and fake pins).
# RAM: board.desc is imported per call and forgotten again; its names (SCHEMA, BOARD_DIRS,
# DEVICE_BOARD_FILE, device_id_from_mac) and board.host's DeepSleep are found here on first use.
from core.errors import lookup


class BoardError(Exception):
    """A board description is missing, unreadable or wrong; the message names the key."""


def battery_volts(raw, desc):
    """ADC reading -> volts with the board's scale (ONE+: raw * 45 / 4095)."""
    b = desc["battery"]
    return raw * b["scale_num"] / b["scale_den"]


# ---- pins --------------------------------------------------------------------------------


class ActivePin:
    """A logical output: value(1) means 'asserted' whatever the wiring polarity; the
    physical level is `active` when asserted. Wraps machine.Pin or a fake pin."""

    def __init__(self, pin, active=1, name=""):
        self.pin = pin
        self.active = 1 if active else 0
        self.name = name

    def value(self, v=None):
        if v is None:
            return 1 if self.pin.value() == self.active else 0
        self.pin.value(self.active if v else 1 - self.active)

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)


def __getattr__(name):
    # the boot-time and host-only names, from the module that has them (imported, and kept, on use)
    import sys

    mod = "board.host" if name == "DeepSleep" else "board.desc"
    if name not in ("DeepSleep", "SCHEMA", "BOARD_DIRS", "DEVICE_BOARD_FILE", "device_id_from_mac"):
        # `from board import desc`: MicroPython asks a package's __getattr__ before its submodules
        mod = "board." + name
        if name[0] == "_":
            raise AttributeError(name)
        try:
            __import__(mod)
        except ImportError:
            raise AttributeError(name)
        return sys.modules[mod]
    __import__(mod)
    return getattr(sys.modules[mod], name)


def load_board(name_or_path=None, devtype=None, dirs=None):
    """Load and validate a board description (see board.desc.load_board). board.desc is
    dropped again afterwards: on the device its bytecode (~5 KB of RAM) is needed once."""
    return lookup("board.desc", "load_board", name_or_path, devtype, dirs)


def make_board(desc=None, argv=None, **kw):
    """The board object for this runtime: board.esp32.Board on an ESP32, else
    board.host.HostBoard configured from argv (--modem PATH --obd PATH --gps PATH).
    (board.desc.make_board, boot only.)"""
    return lookup("board.desc", "make_board", desc, argv, kw)
