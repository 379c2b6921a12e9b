# board.esp32.Board's rare methods (WiFi at boot, buzzer, sleep, reset): functions taking the board
# first, imported per call through BoardBase.__getattr__ (board.rare.method) and forgotten again.
from core.errors import lookup


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


METHODS = {"wlan": wlan, "buzzer": buzzer, "light_sleep": light_sleep, "deep_sleep": deep_sleep,
           "reset_cause": reset_cause, "reset": reset}
