# What the board modules share at run time (no `machine` here either): the board error, the battery
# scale and logical output pins. The submodules import this, not the board package, so no submodule
# imports the package that loads it. Boot-time facts (the description's schema and search path, the
# device id) are in board/desc.py, DeepSleep (host only) in board/host.py.

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
