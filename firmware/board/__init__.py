# Board descriptions and the pure helpers around them. Nothing here imports `machine`:
# this module runs on the host too (build/deploy/hwcheck tooling, tests).
#
#   desc = load_board("oneplus-b")            # boards/oneplus-b.json, validated (board.desc)
#   desc = load_board("oneplus-b", devtype=14) # with the per-devType pin overrides applied
#   device_id_from_mac(b"...6 bytes...")      # the official 8-character device id
#
# Here: what every board module shares while the device runs (BoardError, ActivePin, battery_volts,
# and BoardBase: what the ESP32 board and the host board share); the submodules import these from the
# package, which imports none of them (no circle). Beside it:
# board.desc (boot only: schema, overrides, devType mapping, device id, make_board), board.esp32.Board
# (imports machine), board.host.HostBoard (unix port / CPython: serial paths and fake pins).
# RAM: board.desc is imported per call and forgotten again; its names (SCHEMA, BOARD_DIRS,
# DEVICE_BOARD_FILE, device_id_from_mac) and board.host's DeepSleep are found here on first use.
from core.compat import Clock
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


# ---- BoardBase ---------------------------------------------------------------------------
# Roles from the board description, lazily built and cached streams and pins, battery voltage,
# device id, watchdog. Subclasses provide the hardware hooks: _open_stream(role, sec) -> stream,
# _make_pin(num, level, name) -> pin, _adc_read(pin) -> raw 0..4095 or None, _make_wdt(timeout_ms)
# -> wdt, mac() -> 6 bytes (no stubs here: each would cost a function on the device's heap).

# Role names used by the rest of the firmware -> sections of the board description.
ROLES = {"modem": "modem", "obd": "coproc", "coproc": "coproc", "gps": "gnss", "gnss": "gnss"}


class BoardBase:
    def __init__(self, desc, clock=None):
        self.desc = desc
        self.name = desc["name"]
        self.model = desc["model"]
        self.clock = clock or Clock()
        self._streams = {}
        self._pins = {}
        self._wdt = None

    # -- description access --
    def section(self, role):
        sec = self.desc.get(ROLES.get(role, role))
        if sec is None:
            raise BoardError("board %s has no %s (its '%s' entry is null)" % (self.name, role, ROLES.get(role, role)))
        return sec

    def has(self, role):
        return self.desc.get(ROLES.get(role, role)) is not None

    def gnss_uart(self):
        """True when a GNSS receiver is on a UART this board can open. The ONE+ descriptions
        have a gnss section with uart null (every hardware UART is taken)."""
        g = self.desc.get("gnss")
        return g is not None and g.get("uart") is not None

    def apply_devtype(self, devtype):
        """Apply the description's per-devType overrides (by_devtype: e.g. devType 13 has the modem
        on RX 32 / TX 33) once the co-processor said which board this is. Returns the sections that
        changed. A section whose UART is already open cannot move: BoardError. (board.desc, boot only.)"""
        return lookup("board.desc", "board_devtype", self, devtype)

    # -- streams (core.stream interface) --
    def stream(self, role):
        key = ROLES.get(role, role)
        s = self._streams.get(key)
        if s is None:
            s = self._open_stream(key, self.section(key))  # pyright: ignore[reportAttributeAccessIssue] - a hook
            self._streams[key] = s
        return s

    def modem_stream(self):
        return self.stream("modem")

    def obd_stream(self):
        return self.stream("coproc")

    def gps_stream(self):
        return self.stream("gnss")

    def close(self):
        for s in self._streams.values():
            s.close()
        self._streams = {}

    # -- outputs --
    def out_pin(self, role, key="pin", active="active", default=1):
        """A cached ActivePin for section[role][key], released (not asserted) on creation; its
        polarity is section[role][active] (default when absent)."""
        ident = role + "." + key
        p = self._pins.get(ident)
        if p is None:
            sec = self.section(role)
            num = sec.get(key)
            if num is None:
                raise BoardError("board %s: %s.%s is not wired (null)" % (self.name, role, key))
            a = sec.get(active, default)
            p = ActivePin(self._make_pin(num, 1 - a, ident), a, ident)  # pyright: ignore[reportAttributeAccessIssue]
            self._pins[ident] = p
        return p

    def modem_power_pin(self):
        """The modem power key as a logical pin: value(1) = key pressed."""
        return self.out_pin("modem_power")

    def coproc_reset_pin(self):
        """The co-processor reset line as a logical pin: value(1) = held in reset."""
        return self.out_pin("coproc", "reset", "reset_active", 0)

    def led(self):
        return self.out_pin("led")

    def gnss_power(self, on):
        """Switch the GNSS receiver's power pin(s) (power, and power2 where the devType uses it)."""
        g = self.section("gnss")
        for key in ("power", "power2"):
            if g.get(key) is not None:
                self.out_pin("gnss", key, "power_active", 1).value(1 if on else 0)

    # -- inputs --
    def battery_voltage(self):
        """Volts from the battery ADC, or None when this board/devType reads the battery
        another way (battery.source 'coproc': ask the co-processor with ATRV)."""
        b = self.desc.get("battery")
        if not b or b.get("source") != "adc":
            return None
        raw = self._adc_read(b["pin"])  # pyright: ignore[reportAttributeAccessIssue] - a hook
        if raw is None:
            return None
        return battery_volts(raw, self.desc)

    def device_id(self):
        return lookup("board.desc", "device_id_from_mac", self.mac())  # pyright: ignore[reportAttributeAccessIssue]

    # -- watchdog --
    def wdt_start(self, timeout_ms):
        if self._wdt is None:
            self._wdt = self._make_wdt(timeout_ms)  # pyright: ignore[reportAttributeAccessIssue] - a hook
        return self._wdt

    def wdt_feed(self):
        if self._wdt is not None:
            self._wdt.feed()


def __getattr__(name):
    # the boot-time and host-only names, from the module that has them (imported, and kept, on use)
    import sys

    names = "DeepSleep SCHEMA BOARD_DIRS DEVICE_BOARD_FILE device_id_from_mac".split()  # (as data: no names)
    if name in names:
        mod = "board.host" if name == names[0] else "board.desc"
        __import__(mod)
        return getattr(sys.modules[mod], name)
    # `from board import desc`: MicroPython asks a package's __getattr__ before its submodules
    if name[0] == "_":
        raise AttributeError(name)
    mod = __name__ + "." + name
    try:
        __import__(mod)
    except ImportError:
        raise AttributeError(name)
    return sys.modules[mod]


def load_board(name=None, devtype=None, dirs=None):
    """Load and validate a board description (see board.desc.load_board). board.desc is
    dropped again afterwards: on the device its bytecode (~5 KB of RAM) is needed once."""
    return lookup("board.desc", "load_board", name, devtype, dirs)


def make_board(desc=None, argv=None, **kw):
    """The board object for this runtime: board.esp32.Board on an ESP32, else
    board.host.HostBoard configured from argv (--modem PATH --obd PATH --gps PATH).
    (board.desc.make_board, boot only.)"""
    return lookup("board.desc", "make_board", desc, argv, kw)
