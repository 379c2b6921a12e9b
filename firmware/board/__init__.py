# Board descriptions and the pure helpers around them. Nothing here imports `machine`:
# this module runs on the host too (build/deploy/hwcheck tooling, tests).
#
#   desc = load_board("oneplus-b")            # boards/oneplus-b.json, validated (board.desc)
#   desc = load_board("oneplus-b", devtype=14) # with the per-devType pin overrides applied
#   device_id_from_mac(b"...6 bytes...")      # the official 8-character device id
#
# Here: what every board module shares while the device runs (BoardError, ActivePin, and BoardBase:
# what the ESP32 board and the host board share); the submodules import these from the package,
# which imports none of them (no circle). Beside it: board.desc (boot only: schema, overrides,
# devType mapping, device id, make_board), board.rare (BoardBase's boot-time and rare methods, and
# this package's other names), board.esp32.Board (imports machine), board.host.HostBoard (unix
# port / CPython: serial paths and fake pins).
# RAM: board.desc and board.rare are imported per call and forgotten again (core.errors.lookup); the
# package's names battery_volts, SCHEMA, BOARD_DIRS, DEVICE_BOARD_FILE,
# device_id_from_mac and board.host's DeepSleep are found through its __getattr__ (board.rare's attr).
from core.compat import Clock
from core.errors import lookup


class BoardError(Exception):
    """A board description is missing, unreadable or wrong; the message names the key."""


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


class BoardBase:
    """Roles from the board description, lazily built and cached streams and pins, battery voltage,
    device id, watchdog. Subclasses provide the hardware hooks: _open_stream(role, sec) -> stream,
    _make_pin(num, level, name) -> pin, _adc_read(pin) -> raw 0..4095 or None, _make_wdt(timeout_ms)
    -> wdt, mac() -> 6 bytes (no stubs here: each would cost a function on the device's heap).

    Resident: battery_voltage (the sampler's). The other methods
    are board/rare.py's functions taking the board first, reached through __getattr__ and imported
    per call: section(role), has(role), gnss_uart(), apply_devtype(devtype), stream(role), modem_stream(),
    obd_stream(), gps_stream(), close(), out_pin(role, key="pin", active="active", default=1),
    modem_power_pin(), coproc_reset_pin(), led(), gnss_power(on), device_id(), wdt_start(ms),
    wdt_feed() (the loop feeds the watchdog wdt_start returned itself).
    RAM: the running board keeps no description. `board.desc` (the validated description, overrides
    applied) is read from its board file again on each access (board.rare._desc, boot and rare paths);
    only a description given as a dict that came from no file (a test's) is kept as the attribute."""

    def __init__(self, desc, clock=None):
        self.name = desc["name"]
        self.model = desc["model"]
        self.clock = clock or Clock()
        self._streams = {}
        self._pins = {}
        self._wdt = None
        # what running reads of the description (board.rare.settle): the battery's ADC pin and scale, the
        # sections present; `desc` itself is read from its file again when asked for (board.rare)
        lookup("board.rare", "settle", self, desc)

    def __getattr__(self, name):
        if name[0] == "_":  # (not a method of board.rare: no import for it)
            raise AttributeError(name)
        return lookup("board.rare", "method", self, name)

    def battery_voltage(self):
        """Volts from the battery ADC (ONE+: raw * 45 / 4095, the description's scale), or None when
        this board/devType reads the battery another way (battery.source 'coproc': ask the
        co-processor with ATRV)."""
        b = self._bat  # (pin, scale_num, scale_den) or None: board.rare.settle
        if b is None:
            return None
        raw = self._adc_read(b[0])  # a hook (found through __getattr__ to the type checker)
        if raw is None:
            return None
        return raw * b[1] / b[2]


def __getattr__(name):
    # the boot-time, rare and host-only names (board.rare's attr: AttributeError for others);
    # `from board import desc`: MicroPython asks a package's __getattr__ before its submodules
    if name[0] == "_":
        raise AttributeError(name)
    return lookup("board.rare", "attr", name)


# (here, not in board.rare: `from board import load_board` would keep that module alive in the importer's globals)
def load_board(name=None, devtype=None, dirs=None):
    """Load and validate a board description (see board.desc.load_board). board.desc is
    dropped again afterwards: on the device its bytecode (~5 KB of RAM) is needed once."""
    return lookup("board.desc", "load_board", name, devtype, dirs)


def make_board(desc=None, argv=None, **kw):
    """The board object for this runtime: board.esp32.Board on an ESP32, else
    board.host.HostBoard configured from argv (--modem PATH --obd PATH --gps PATH).
    (board.desc.make_board, boot only.)"""
    return lookup("board.desc", "make_board", desc, argv, kw)
