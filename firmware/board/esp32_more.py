# board.esp32.Board's boot-time hooks (UARTs, pins, watchdog) and rare methods (MAC, WiFi at boot,
# buzzer, sleep, reset): functions taking the board first, imported per call through board.rare
# (BoardBase.__getattr__ for the methods, board.rare's hook() for the hooks) and forgotten again.
from core.errors import lookup
from core.stream import UartStream


def _open_stream(board, role, sec):
    if sec.get("uart") is None or sec.get("rx") is None or sec.get("tx") is None:
        raise lookup("board.desc", "no_uart", board.name, role, sec)  # the error's text: boot only
    m = board._m
    u = m.UART(sec["uart"], baudrate=sec["baud"], tx=sec["tx"], rx=sec["rx"], rxbuf=sec.get("rxbuf", 256), timeout=0)
    return UartStream(u)


def _make_pin(board, num, level, name):
    return board._m.Pin(num, board._m.Pin.OUT, value=level)


def _make_wdt(board, timeout_ms):
    # Once started the ESP32 watchdog cannot be stopped: feed it from the main loop.
    return board._m.WDT(timeout=timeout_ms)


def mac(board):
    return board._m.unique_id()  # the 6-byte efuse base MAC on the ESP32


def wlan(board):
    """The WiFi station interface (network.WLAN(STA_IF)), active, for transport 'wifi'.
    net.wifi.WifiPublisher joins it with secrets wifi_ssid/wifi_password and waits at most
    its wifi_timeout_ms (20 s) for the association, raising WifiError naming the SSID.
    (Built once, at boot: board.desc.esp32_wlan.)"""
    if board._wlan is None:
        board._wlan = lookup("board.desc", "esp32_wlan", board.name, board._net)
    return board._wlan


def buzzer(board, on):
    """Buzzer on (PWM at the board's frequency, 50 % duty) or off."""
    b = board.section("buzzer")
    pwm = board._pins.get("buzzer.pwm")
    if on:
        if pwm is None:
            pwm = board._m.PWM(board._m.Pin(b["pin"]), freq=b.get("freq", 2000), duty_u16=32768)
            board._pins["buzzer.pwm"] = pwm
    elif pwm is not None:
        pwm.deinit()
        del board._pins["buzzer.pwm"]


def light_sleep(board, ms):
    board._m.lightsleep(ms)


def deep_sleep(board, ms):
    board._m.deepsleep(ms)  # does not return: the chip restarts from boot.py


def reset_cause(board):
    return board._m.reset_cause()


def reset(board):
    board._m.reset()


def get(name):
    return METHODS.get(name)


METHODS = {"_open_stream": _open_stream, "_make_pin": _make_pin, "_make_wdt": _make_wdt, "mac": mac, "wlan": wlan, "buzzer": buzzer, "light_sleep": light_sleep, "deep_sleep": deep_sleep,
           "reset_cause": reset_cause, "reset": reset}
