# The host board (MicroPython unix port or CPython): the same roles as the ESP32 board,
# mapped to serial paths (a USB SIM7600's AT port, an ELM327 emulator's pty, a GNSS
# simulator), fake pins that record (level, ms), a fake watchdog and a fixed MAC. With power_key=PATH
# the modem power-key pin's changes are also written to PATH (pin_file), for a simulator in another process.
from board import BoardBase


class DeepSleep(Exception):
    """Raised by HostBoard.deep_sleep: on a real ESP32 deep sleep never returns (the chip
    restarts); on the host the caller sees this and ends or restarts its loop."""

    def __init__(self, ms):
        super().__init__("deep sleep for %d ms" % ms)
        self.ms = ms


class FakePin:
    """Records every level written with the clock's time: history = [(level, ms), ...]."""

    def __init__(self, num, level=0, clock=None, name=""):
        self.num = num
        self.name = name
        self.clock = clock
        self.level = level
        self.history = [(level, clock.ticks_ms() if clock else 0)]
        self.listeners = []

    def value(self, v=None):
        if v is None:
            return self.level
        self.level = 1 if v else 0
        t = self.clock.ticks_ms() if self.clock else 0
        self.history.append((self.level, t))
        for fn in self.listeners:
            fn(self.level, t)

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)


class FakeWDT:
    def __init__(self, timeout_ms, clock=None):
        self.timeout_ms = timeout_ms
        self.clock = clock
        self.feeds = 0
        self.last_feed = clock.ticks_ms() if clock else 0

    def feed(self):
        self.feeds += 1
        if self.clock:
            self.last_feed = self.clock.ticks_ms()

    def expired(self):
        """True when the last feed is older than the timeout (a real one would reset)."""
        return bool(self.clock) and self.clock.diff(self.clock.ticks_ms(), self.last_feed) > self.timeout_ms


def pin_file(path, active):
    """A FakePin listener that carries a logical pin out of the process: one line per change appended to
    `path`, `1` asserted (for the modem power key: pressed, the pin at its active level) and `0` released,
    flushed at once. The pty simulator follows this file (host_tests/peers/sim7600.py --power-key PATH).
    (A closure, not a class: cheaper in the heap.)"""
    f = open(path, "a")
    last = [0]  # created released (BoardBase.out_pin): a first release is no change

    def cb(level, t):
        v = 1 if level == active else 0
        if v != last[0]:
            last[0] = v
            f.write("1\n" if v else "0\n")
            f.flush()

    return cb


class HostBoard(BoardBase):
    """The host's hooks. Resident: _adc_read, the wdt property, gnss_uart(). The others are
    board/host_more.py's, imported per call (board.rare): the hooks _open_stream (a core.serial.SerialPath),
    _make_pin (a FakePin; the power key's changes to power_key's file), _make_wdt (a FakeWDT), and the
    methods mac(), fake_pin(role, key="pin"), wlan(), buzzer(on), light_sleep(ms), deep_sleep(ms),
    reset_cause(), reset() (through BoardBase.__getattr__)."""

    # board.rare: this board's rare methods and hooks are module _more + "_more"'s (board.host_more; a module's
    # name is an interned name, that literal would be a str constant)
    _more = __name__

    def __init__(self, desc, modem=None, obd=None, gps=None, clock=None, mac=b"\x24\x0a\xc4\x00\x00\x01", adc_raw=None,
                 wlan=None, power_key=None):
        BoardBase.__init__(self, desc, clock)
        self.power_key = power_key  # a file the modem power-key pin's changes go to (see pin_file)
        self._wlan = wlan  # a WLAN-like test double, or None: the host's own networking
        self.paths = {"modem": modem, "coproc": obd, "gnss": gps}
        self._mac = bytes(mac)
        self.adc_raw = adc_raw  # set by tests/sims: the battery ADC reading (0..4095)
        self.sleeps = []
        self.buzzing = False

    def _adc_read(self, pin):
        return self.adc_raw

    @property
    def wdt(self):
        return self._wdt

    def gnss_uart(self):
        """On the host the GNSS stream is a serial path (--gps), whatever the description says."""
        return bool(self.paths.get("gnss"))
