# board.host.HostBoard's rare methods (the tests' fake_pin, WiFi, buzzer, sleep, reset): functions
# taking the board first, imported per call through BoardBase.__getattr__ (board.rare.method) and
# forgotten again.
from board.host import DeepSleep


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


METHODS = {"fake_pin": fake_pin, "wlan": wlan, "buzzer": buzzer, "light_sleep": light_sleep, "deep_sleep": deep_sleep,
           "reset_cause": reset_cause, "reset": reset}
