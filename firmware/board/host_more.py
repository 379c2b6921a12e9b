# board.host.HostBoard's boot-time hooks (serial paths, fake pins, the fake watchdog) and rare methods
# (MAC, the tests' fake_pin, WiFi, buzzer, sleep, reset): functions taking the board first, imported
# per call through board.rare (BoardBase.__getattr__ for the methods, board.rare's hook() for the
# hooks) and forgotten again.
from board import BoardError
from board.host import DeepSleep, FakePin, FakeWDT, pin_file
from core.serial import SerialPath


def _open_stream(board, role, sec):
    path = board.paths.get(role)
    if not path:
        flag = "--" + {"coproc": "obd", "gnss": "gps"}.get(role, role)
        raise BoardError("host board: no serial path for the %s (pass %s PATH)" % (role, flag))
    try:
        return SerialPath(path)
    except OSError as e:
        raise BoardError("host board: cannot open %s for the %s: %s" % (path, role, e))


def _make_pin(board, num, level, name):
    pin = FakePin(num, level, board.clock, name)
    if name == "modem_power.pin" and board.power_key:
        pin.listeners.append(pin_file(board.power_key, 1 - level))  # created released: the active level is the other
    return pin


def _make_wdt(board, timeout_ms):
    return FakeWDT(timeout_ms, board.clock)


def mac(board):
    return board._mac


def fake_pin(board, role, key="pin"):
    """The FakePin under a role's logical pin (its .history), for tests and sims."""
    return board._pins[role + "." + key].pin


def wlan(board):
    """None (the host is already networked, so transport 'wifi' just opens the broker's
    socket), or the WLAN-like object a test passed."""
    return board._wlan


def buzzer(board, on):
    board.section("buzzer")
    board.buzzing = bool(on)


def light_sleep(board, ms):
    import time

    board.sleeps.append(("light", ms))
    fn = getattr(time, "sleep_ms", None)
    if fn is not None:
        fn(ms)  # MicroPython unix
    else:
        time.sleep(ms / 1000)


def deep_sleep(board, ms):
    board.sleeps.append(("deep", ms))
    raise DeepSleep(ms)


def reset_cause(board):
    return 0


def reset(board):
    raise DeepSleep(0)


def get(name):
    return METHODS.get(name)


METHODS = {"_open_stream": _open_stream, "_make_pin": _make_pin, "_make_wdt": _make_wdt, "mac": mac,
           "fake_pin": fake_pin, "wlan": wlan, "buzzer": buzzer, "light_sleep": light_sleep, "deep_sleep": deep_sleep,
           "reset_cause": reset_cause, "reset": reset}
