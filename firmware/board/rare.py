# BoardBase's boot-time and rare methods, and the board package's names that are not resident:
# imported per call through BoardBase.__getattr__ / the package's __getattr__ (core.errors.lookup)
# and forgotten again, so none of this stays on the device's heap. Each method here is a function
# taking the board first; `method` hands it out bound (a lambda made for the access).
import sys

from board import ActivePin, BoardError
from core.errors import lookup

# Role names used by the rest of the firmware -> sections of the board description.
ROLES = {"modem": "modem", "obd": "coproc", "coproc": "coproc", "gps": "gnss", "gnss": "gnss"}


def method(board, name):
    """board.<name> for BoardBase.__getattr__: this module's function of that name bound to board;
    board.desc: the description read from its file again (_desc)."""
    if name == "desc":
        return _desc(board)
    f = METHODS.get(name)
    if f is None:
        more = getattr(board, "_more", None)  # the board class's module: its rare methods are <module>_more's
        f = more and lookup(more + "_more", "get", name)  # (esp32_more, host_more)
        if f is None:
            raise AttributeError(name)
    return lambda *a: f(board, *a)


def hook(board, name, *a):
    """A hardware hook of the board (_open_stream, _make_pin, _make_wdt): the class's own method (a test's
    board), else the function of the board class's module of rare methods and hooks (boot-time code)."""
    f = getattr(board, name, None)  # (BoardBase.__getattr__ refuses "_" names: None)
    if f is not None:
        return f(*a)
    return lookup(board._more + "_more", "get", name)(board, *a)


def attr(name):
    """board.<name> for the package's __getattr__."""
    if name == "battery_volts":  # (the tests': a function held by an importer keeps this module alive)
        return battery_volts
    if name == "DeepSleep" or name in ("SCHEMA", "BOARD_DIRS", "DEVICE_BOARD_FILE", "device_id_from_mac"):
        mod = "board.host" if name == "DeepSleep" else "board.desc"
        __import__(mod)  # (kept: a tool or test asked for its name)
        return getattr(sys.modules[mod], name)
    mod = "board." + name
    try:
        __import__(mod)
    except ImportError:
        raise AttributeError(name)
    return sys.modules[mod]


def battery_volts(raw, desc):
    """ADC reading -> volts with the board's scale (ONE+: raw * 45 / 4095)."""
    b = desc["battery"]
    return raw * b["scale_num"] / b["scale_den"]


def settle(board, desc):
    """What the board keeps of a validated description `desc` (BoardBase.__init__, apply_devtype):
    _bat, the battery's (ADC pin, scale_num, scale_den) or None (no ADC battery: battery_voltage None);
    _has, the keys whose value is not null (has); _gu, gnss_uart(). A description load_board read from
    a file (its "file" entry) and nobody changed since (the file read again gives the same) is not
    kept: board.desc reads that file again (_desc). Any other (a dict a caller built or changed) is
    kept as board.desc."""
    b = desc.get("battery")
    board._bat = (b["pin"], b["scale_num"], b["scale_den"]) if b and b.get("source") == "adc" else None
    board._has = tuple([k for k in desc if desc[k] is not None])
    g = desc.get("gnss")
    board._gu = g is not None and g.get("uart") is not None
    board._file, board._devtype = desc.get("file"), desc.get("devtype")
    # compared with what a later board.desc gives (the file read again: validate_board changes nothing),
    # not with a second load_board: that would load board.desc's bytecode and validate again at every boot
    if board._file is not None and desc == _desc(board):
        try:
            del board.desc  # (a changed one kept before)
        except AttributeError:
            pass
    else:
        board._file = None
        board.desc = desc


def _desc(board):
    """board.desc of a board whose description came from a file: that file read again (validated when
    the board was made: settle compared it), with the devType's overrides when apply_devtype applied
    them. (Without board.desc: its ~5 KB of bytecode would be a rare path's peak.)"""
    import json

    with open(board._file) as f:
        d = json.load(f)
    d["file"] = board._file
    return d if board._devtype is None else apply_overrides(d, board._devtype)


def apply_overrides(desc, devtype):
    """board.desc.apply_devtype: a copy of `desc` with the overrides for `devtype` applied (later rules
    win) and desc['devtype'] set. Only the touched sections are copied."""
    out = dict(desc)
    for rule in desc.get("by_devtype") or ():
        if devtype in rule["devtypes"]:
            for k, v in rule["set"].items():
                sec, _, key = k.partition(".")
                if out[sec] is desc.get(sec):
                    out[sec] = dict(desc[sec])
                out[sec][key] = v
    out["devtype"] = devtype
    return out


# ---- BoardBase's methods -----------------------------------------------------------------------
def section(board, role):
    k = ROLES.get(role, role)
    # (not board.desc for a file's: called through a bound lambda this module is forgotten already, and
    # BoardBase.__getattr__ would import it a second time)
    sec = (_desc(board) if getattr(board, "_file", None) else board.desc).get(k)
    if sec is None:
        raise BoardError("board %s has no %s (its '%s' entry is null)" % (board.name, role, k))
    return sec


def has(board, role):
    return ROLES.get(role, role) in board._has


def gnss_uart(board):
    """True when a GNSS receiver is on a UART this board can open. The ONE+ descriptions
    have a gnss section with uart null (every hardware UART is taken)."""
    return board._gu


def apply_devtype(board, devtype):
    """Apply the description's per-devType overrides (by_devtype: e.g. devType 13 has the modem
    on RX 32 / TX 33) once the co-processor said which board this is. Returns the sections that
    changed. A section whose UART is already open cannot move: BoardError. (board.desc, boot only.)"""
    return lookup("board.desc", "board_devtype", board, devtype)


def stream(board, role):
    """The role's stream (core.stream interface), opened on first use and cached."""
    key = ROLES.get(role, role)
    s = board._streams.get(key)
    if s is None:
        s = hook(board, "_open_stream", key, section(board, key))
        board._streams[key] = s
    return s


def close(board):
    for s in board._streams.values():
        s.close()
    board._streams = {}


def out_pin(board, role, key="pin", active="active", default=1):
    """A cached ActivePin for section[role][key], released (not asserted) on creation; its
    polarity is section[role][active] (default when absent)."""
    ident = role + "." + key
    p = board._pins.get(ident)
    if p is None:
        sec = section(board, role)
        num = sec.get(key)
        if num is None:
            raise BoardError("board %s: %s.%s is not wired (null)" % (board.name, role, key))
        a = sec.get(active, default)
        p = ActivePin(hook(board, "_make_pin", num, 1 - a, ident), a, ident)
        board._pins[ident] = p
    return p


def gnss_power(board, on):
    """Switch the GNSS receiver's power pin(s) (power, and power2 where the devType uses it). The pins
    are looked up in the description once (_pins["gnss"]: a standby's later switches read no file)."""
    pins = board._pins.get("gnss")
    if pins is None:
        g = section(board, "gnss")
        pins = [out_pin(board, "gnss", k, "power_active", 1) for k in ("power", "power2") if g.get(k) is not None]
        board._pins["gnss"] = pins
    for p in pins:
        p.value(1 if on else 0)


def wdt_start(board, timeout_ms):
    if board._wdt is None:
        board._wdt = hook(board, "_make_wdt", timeout_ms)
    return board._wdt


def wdt_feed(board):
    if board._wdt is not None:
        board._wdt.feed()


METHODS = {
    "section": section,
    "has": has,
    "gnss_uart": gnss_uart,
    "apply_devtype": apply_devtype,
    "stream": stream,
    "modem_stream": lambda b: stream(b, "modem"),
    "obd_stream": lambda b: stream(b, "coproc"),
    "gps_stream": lambda b: stream(b, "gnss"),
    "close": close,
    "out_pin": out_pin,
    # the modem power key as a logical pin: value(1) = key pressed
    "modem_power_pin": lambda b: out_pin(b, "modem_power"),
    # the co-processor reset line as a logical pin: value(1) = held in reset
    "coproc_reset_pin": lambda b: out_pin(b, "coproc", "reset", "reset_active", 0),
    "led": lambda b: out_pin(b, "led"),
    "gnss_power": gnss_power,
    "device_id": lambda b: lookup("board.desc", "device_id_from_mac", b.mac()),
    "wdt_start": wdt_start,
    "wdt_feed": wdt_feed,
}
