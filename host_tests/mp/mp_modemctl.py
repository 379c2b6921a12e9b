# mp-heap: 64K
# telelogger/modemctl.py on both runtimes: the loop's power_off/power_on/wake reach the modem's power key
# (modem.power.ModemPower), made at the first call, not when the loop asks whether the modem has them
# (standby_io uses hasattr): a board without a power pin fails in the call, where standby reports it.
import sys

from telelogger.modemctl import ModemCtl


class FakePower:
    made = []

    def __init__(self, pin, at, clock, log=None):
        FakePower.made.append((pin, at))
        self.calls = []

    async def power_off(self):
        self.calls.append("off")
        return "off"

    async def power_on(self):
        self.calls.append("on")
        return "on"

    async def ensure_on(self):
        self.calls.append("ensure")
        return True


class FakeModule:  # stands in for modem.power in sys.modules
    ModemPower = FakePower


class Board:
    def __init__(self, pin):
        self.pin = pin

    def modem_power_pin(self):
        if self.pin is None:
            raise ValueError("no modem power pin")
        return self.pin


class Pub:
    at = "AT"


async def test_power_key_made_at_the_first_call_and_kept():
    saved = sys.modules.get("modem.power")
    sys.modules["modem.power"] = FakeModule
    FakePower.made = []
    try:
        m = ModemCtl(Pub(), Board("PIN"), None)
        assert hasattr(m, "power_off") and hasattr(m, "power_on") and hasattr(m, "wake")
        assert FakePower.made == []  # asking made nothing
        assert not hasattr(m, "reboot") and getattr(m, "csq", None) is None
        wake = m.wake  # the publisher's hook, kept from boot on
        assert await m.power_off() == "off" and await m.power_on() == "on" and await wake() is True
        assert FakePower.made == [("PIN", "AT")]  # one key, made once
        assert m._power.calls == ["off", "on", "ensure"]
        bad = ModemCtl(Pub(), Board(None), None)
        assert hasattr(bad, "power_off")  # no error in the question
        try:
            await bad.power_off()
            raise AssertionError("no error")
        except ValueError as e:
            assert "no modem power pin" in str(e)
    finally:
        if saved is None:
            sys.modules.pop("modem.power", None)
        else:
            sys.modules["modem.power"] = saved
