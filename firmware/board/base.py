# What the ESP32 board and the host board share: roles from the board description,
# lazily built and cached streams and pins, battery voltage, device id, watchdog.
# Subclasses provide the hardware hooks: _open_stream(role, sec) -> stream, _make_pin(num, level,
# ident) -> pin, _adc_read(pin) -> raw 0..4095 or None, _make_wdt(timeout_ms) -> wdt, mac() -> 6
# bytes (no stubs here: each would cost a function on the device's heap).
from board import ActivePin, BoardError, battery_volts
from core.compat import Clock
from core.errors import lookup

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
    def out_pin(self, role, key="pin", active_key="active", default_active=1):
        """A cached ActivePin for section[role][key], released (not asserted) on creation."""
        ident = role + "." + key
        p = self._pins.get(ident)
        if p is None:
            sec = self.section(role)
            num = sec.get(key)
            if num is None:
                raise BoardError("board %s: %s.%s is not wired (null)" % (self.name, role, key))
            active = sec.get(active_key, default_active)
            p = ActivePin(self._make_pin(num, 1 - active, ident), active, ident)  # pyright: ignore[reportAttributeAccessIssue]
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
