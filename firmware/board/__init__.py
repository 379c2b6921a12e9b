# Board descriptions and the pure helpers around them. Nothing here imports `machine`:
# this module runs on the host too (build/deploy/hwcheck tooling, tests).
#
#   desc = load_board("oneplus-b")            # boards/oneplus-b.json, validated (board.desc)
#   desc = load_board("oneplus-b", devtype=14) # with the per-devType pin overrides applied
#   device_id_from_mac(b"...6 bytes...")      # the official 8-character device id
#
# Beside this module: board.common (what runs: BoardError, ActivePin, battery_volts), board.desc
# (boot only: schema, overrides, devType mapping, device id), board.esp32.Board (imports machine),
# board.host.HostBoard (unix port / CPython: serial paths and fake pins). `make_board` picks one.
# RAM: board.desc is imported per call and forgotten again; its names (SCHEMA, BOARD_DIRS,
# DEVICE_BOARD_FILE, device_id_from_mac) and board.host's DeepSleep are found here on first use.
from board.common import ActivePin, BoardError, battery_volts  # noqa: F401 - re-exported
from core.errors import lookup


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
    board.host.HostBoard configured from argv (--modem PATH --obd PATH --gps PATH)."""
    import sys

    if not isinstance(desc, dict):
        desc = load_board(desc)
    if sys.platform == "esp32":
        from board.esp32 import Board

        return Board(desc, **kw)
    from board.host import HostBoard, parse_host_args

    opts = parse_host_args(argv if argv is not None else sys.argv[1:])
    for k in ("modem", "obd", "gps"):
        if k not in kw and opts.get(k):
            kw[k] = opts[k]
    return HostBoard(desc, **kw)
