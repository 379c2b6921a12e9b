# What the board modules share (no `machine` here either): the description's schema and search path,
# the board errors, the device id, the battery scale and logical output pins. The submodules import
# this, not the board package, so no submodule imports the package that loads it.

SCHEMA = 1
# Where a board name is looked up, in order: the repo layout when running from the checkout,
# then the device filesystem (deploy copies boards/<name>.json to /boards/ and /board.json).
BOARD_DIRS = ("boards", "/boards", "../boards")
DEVICE_BOARD_FILE = "board.json"

class BoardError(Exception):
    """A board description is missing, unreadable or wrong; the message names the key."""


class DeepSleep(Exception):
    """Raised by HostBoard.deep_sleep: on a real ESP32 deep sleep never returns (the chip
    restarts); on the host the caller sees this and ends or restarts its loop."""

    def __init__(self, ms):
        super().__init__("deep sleep for %d ms" % ms)
        self.ms = ms


# ---- device id ---------------------------------------------------------------------------

_ID_SWAP = {"B": "W", "D": "X", "I": "Y", "O": "Z"}


def device_id_from_mac(mac):
    """The official telelogger device id (genDeviceID): seed = efuse MAC >> 8, where the
    efuse MAC is the 6 MAC bytes read as a little-endian integer (byte 0 lowest); then 8
    characters, 5 bits each starting from the low bits, 0-9 and A-V with B->W, D->X, I->Y,
    O->Z. `mac`: 6 bytes as machine.unique_id() returns them on the ESP32."""
    mac = bytes(mac)
    if len(mac) != 6:
        raise ValueError("MAC must be 6 bytes, got %d" % len(mac))
    seed = int.from_bytes(mac, "little") >> 8
    out = ""
    for _ in range(8):
        x = seed & 0x1F
        seed >>= 5
        if x < 10:
            out += chr(48 + x)
        else:
            c = chr(55 + x)  # 10 -> 'A'
            out += _ID_SWAP.get(c, c)
    return out


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
