# The ESP32 board: machine.UART/Pin/ADC/WDT built lazily from the board description.
# This and nothing else in the firmware imports `machine` (tests pass a fake module).
from board import BoardBase

ADC_FULL_SCALE_UV = 3300000  # the 0..4095 raw scale of Arduino's analogRead at 11 dB, as the official factor assumes


class Board(BoardBase):
    """The ESP32's hooks. Resident: _adc_read (the battery, every battery interval). The others, used at
    boot or rarely, are board/esp32_more.py's, imported per call (board.rare): the hooks _open_stream (a
    machine.UART in a core.stream.UartStream), _make_pin, _make_wdt, and the methods mac(), wlan(),
    buzzer(on), light_sleep(ms), deep_sleep(ms), reset_cause(), reset() (through BoardBase.__getattr__)."""

    # board.rare: this board's rare methods and hooks are module _more + "_more"'s (board.esp32_more; a module's
    # name is an interned name, that literal would be a str constant)
    _more = __name__

    def __init__(self, desc, clock=None, machine=None, network=None):
        BoardBase.__init__(self, desc, clock)
        if machine is None:
            import machine
        self._m = machine
        self._net = network  # the `network` module (tests pass a fake); imported on first wlan()
        self._wlan = None

    def _adc_read(self, pin):
        m = self._m
        adc = self._pins.get(pin)  # (the GPIO number as the key: a sample formats no "adc.%d" name)
        if adc is None:
            adc = m.ADC(m.Pin(pin))
            adc.atten(m.ADC.ATTN_11DB)  # full 0..3.3 V range, as Arduino's analogRead default
            self._pins[pin] = adc
        read_uv = getattr(adc, "read_uv", None)
        if read_uv is not None:
            # calibrated (eFuse) microvolts, as the ESP32 port gives them; expressed on the 0..4095 scale
            # the official 45/4095 factor expects, where 4095 is the 11 dB range's nominal 3.3 V. The raw
            # reading differs by several % between units, a lot against 11.8 V / 13.6 V thresholds.
            return read_uv() * 4095 // ADC_FULL_SCALE_UV
        return adc.read_u16() >> 4  # a port without read_uv: uncalibrated 0..4095
