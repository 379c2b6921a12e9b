# Board descriptions and the pure helpers around them. Nothing here imports `machine`:
# this module runs on the host too (build/deploy/hwcheck tooling, tests).
#
#   desc = load_board("oneplus-b")            # boards/oneplus-b.json, validated (board.desc)
#   desc = load_board("oneplus-b", devtype=14) # with the per-devType pin overrides applied
#   device_id_from_mac(b"...6 bytes...")      # the official 8-character device id
#
# Beside this module: board.desc (schema, overrides, devType mapping), board.esp32.Board
# (imports machine), board.host.HostBoard (unix port / CPython: serial paths and fake pins).
# `make_board` picks one. Kept in small modules so each compiles within a 64 KB heap.

from board.common import (  # noqa: F401 - re-exported: the board package's public names
    BOARD_DIRS, DEVICE_BOARD_FILE, SCHEMA, ActivePin, BoardError, DeepSleep, battery_volts, device_id_from_mac)


def load_board(name_or_path=None, devtype=None, dirs=None):
    """Load and validate a board description (see board.desc.load_board). board.desc is
    dropped again afterwards: on the device its bytecode (~5 KB of RAM) is needed once."""
    import sys

    loaded = "board.desc" in sys.modules
    from board import desc

    try:
        return desc.load_board(name_or_path, devtype, dirs or BOARD_DIRS)
    finally:
        if not loaded:
            from core.unload import forget

            forget("board.desc")


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
