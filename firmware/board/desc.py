# Board descriptions (boards/*.json): loading, schema check, per-devType overrides, the
# devType -> board mapping, the device id. Pure: no `machine`, runs on the host tooling too.
# Boot only: the board package and BoardBase call it through core.errors.lookup (imported for the
# call, then forgotten), so none of it stays on the device's heap.
import json

from board import BoardError
from core.errors import lookup

SCHEMA = 1
# Where a board name is looked up, in order: the repo layout when running from the checkout,
# then the device filesystem (deploy copies boards/<name>.json to /boards/ and /board.json).
BOARD_DIRS = ("boards", "/boards", "../boards")
DEVICE_BOARD_FILE = "board.json"


def load_board(name=None, devtype=None, dirs=None):
    """Load and validate a board description.

    `name`: a dict (validated and returned), a path to a .json file, a board name
    looked up in `dirs` (e.g. "oneplus-b"), or None for the deployed /board.json.
    `devtype`: apply the file's per-devType overrides (see apply_devtype). A description read from
    a file has that file's path as its "file" entry (BoardBase keeps no description, board.rare._desc)."""
    dirs = dirs or BOARD_DIRS
    where = "board"  # a dict: validate_board adds its name
    if isinstance(name, dict):
        desc = name
    else:
        path = name or DEVICE_BOARD_FILE
        if not ("/" in path or path.endswith(".json")):  # a name: the first dirs/<name>.json that opens
            path = None
            for d in dirs:
                try:
                    open(d + "/" + name + ".json").close()  # pyright: ignore[reportOperatorIssue] - a name here
                    path = d + "/" + name + ".json"  # pyright: ignore[reportOperatorIssue]
                    break
                except OSError:
                    pass
            if path is None:
                raise BoardError("board %r not found (looked for %s.json in %s)" % (name, name, ", ".join(dirs)))
        try:
            with open(path) as f:
                desc = json.load(f)
        except OSError as e:
            raise BoardError("cannot read board file %s: %s" % (path, e))
        except ValueError as e:
            raise BoardError("board file %s is not valid JSON: %s" % (path, e))
        where = path
    validate_board(desc, where)
    if where != "board":
        desc["file"] = where  # where it came from: a board keeps no description, it reads this file again
    if devtype is not None:
        desc = apply_devtype(desc, devtype)
    return desc


if 1 - 1:  # pyright reads it, mpy-cross folds it away (nothing on the device)
    from typing import Any  # noqa: F401 - used by the type comment below


def _need(d, key, t, where):  # type: (dict, str, Any, str) -> Any
    """d[key], checked against the type or tuple of types `t` (None among them: null allowed; bools
    never pass as int)."""
    if key not in d:
        raise BoardError("%s: missing key %r" % (where, key))
    v = d[key]
    t = t if isinstance(t, tuple) else (t,)
    if v is None and None in t:
        return v  # (None)
    t = tuple([x for x in t if x is not None])
    if isinstance(v, bool) or not isinstance(v, t):
        raise BoardError("%s: %r must be %s, got %r" % (where, key, " or ".join([x.__name__ for x in t]), v))
    return v


def validate_board(desc, where="board"):
    """Check the schema documented in boards/README.md; raise BoardError naming the key."""
    # names as data (split on use): each short literal would be an interned name for good
    uart, rx, tx, baud, pin, source, battery, coproc, gnss = "uart rx tx baud pin source battery coproc gnss".split()
    if not isinstance(desc, dict):
        raise BoardError("%s: a board description is a JSON object, got %r" % (where, type(desc).__name__))
    if desc.get("schema") != SCHEMA:
        raise BoardError("%s: 'schema' must be %d, got %r" % (where, SCHEMA, desc.get("schema")))
    name = _need(desc, "name", str, where)
    if where == "board":
        where += " " + name
    _need(desc, "model", str, where)
    for n in _need(desc, "devtypes", list, where) or ():
        if not isinstance(n, int):
            raise BoardError("%s: 'devtypes' entries must be integers, got %r" % (where, n))
    uarts = ["modem"]  # the sections with a UART: uart (null: none assigned), rx, tx, baud
    pk = _need(desc, "modem_power", dict, where)
    _need(pk, pin, int, where + ": modem_power")
    if pk.get("active") not in (0, 1):
        raise BoardError("%s: modem_power.active must be 0 or 1, got %r" % (where, pk.get("active")))
    if desc.get(coproc) is not None:
        uarts.append(coproc)
        _need(_need(desc, coproc, dict, where), "reset", (int, None), "%s: %s" % (where, coproc))
    g = _need(desc, gnss, dict, where)
    srcs = ("uart", "modem", "coproc", "none")
    if g.get(source) not in srcs:
        raise BoardError("%s: gnss.source must be one of %s, got %r" % (where, "/".join(srcs), g.get(source)))
    if g[source] == uart:
        uarts.append(gnss)
    for role in uarts:
        sec = _need(desc, role, dict, where)
        w = "%s: %s" % (where, role)
        _need(sec, uart, (int, None), w)
        _need(sec, rx, int, w)
        _need(sec, tx, int, w)
        _need(sec, baud, int, w)
    b = _need(desc, battery, (dict, None), where)
    if isinstance(b, dict):
        srcs = ("adc", "coproc", "none")
        if b.get(source) not in srcs:
            raise BoardError("%s: battery.source must be one of %s, got %r" % (where, "/".join(srcs), b.get(source)))
        if b[source] == "adc":
            w = "%s: %s" % (where, battery)
            _need(b, pin, int, w)
            _need(b, "scale_num", (int, float), w)
            if not _need(b, "scale_den", (int, float), w):
                raise BoardError("%s: battery.scale_den must not be 0" % where)
    for role in ("led", "buzzer"):
        sec = desc.get(role)
        if sec is not None:
            _need(sec, pin, int, "%s: %s" % (where, role))
    for rule in desc.get("by_devtype") or ():
        w = where + ": by_devtype"
        _need(rule, "devtypes", list, w)
        for k in _need(rule, "set", dict, w):
            sec, _, key = k.partition(".")
            if not key or not isinstance(desc.get(sec), dict):
                raise BoardError("%s: override key %r must be <section>.<key> of an existing section" % (w, k))
    return desc


def apply_devtype(desc, devtype):
    """A copy of `desc` with the overrides for `devtype` applied (later rules win) and
    desc['devtype'] set. Only the touched sections are copied. (board.rare's: board.desc is read
    from its file again there, without this module.)"""
    return lookup("board.rare", "apply_overrides", desc, devtype)


def board_devtype(board, devtype):
    """BoardBase.apply_devtype: the overrides for `devtype` applied to the board's description once
    the co-processor said which board this is; the sections that changed. A section whose UART is
    already open cannot move: BoardError."""
    desc = board.desc
    if not desc.get("by_devtype") or desc.get("devtype") == devtype:
        return []
    new = apply_devtype(desc, devtype)
    changed = [k for k in ("modem", "coproc", "gnss", "battery") if new.get(k) != desc.get(k)]
    busy = [k for k in changed if k in board._streams]
    if busy:
        raise BoardError("devType %d moves the %s pins, but that UART is already open" % (devtype, ", ".join(busy)))
    lookup("board.rare", "settle", board, new)  # the battery, the sections; board.desc now with the overrides
    if "gnss" in changed:
        board._pins.pop("gnss", None)  # gnss_power's pins: looked up again
    return changed


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
        c = chr(48 + x if x < 10 else 55 + x)  # 10 -> 'A'
        k = "B>W D>X I>Y O>Z".find(c)  # never finds W..Z: c is 0-9 or A-V
        out += c if k < 0 else "B>W D>X I>Y O>Z"[k + 2]
    return out


def no_uart(name, role, sec):
    """The BoardError of a role board.esp32 cannot open a UART for (section `sec`)."""
    if sec.get("uart") is None:
        return BoardError(
            "board %s: no hardware UART assigned to %s (%s.uart is null); the ESP32 has UART0-2 and "
            "UART0 is the USB console: set %s.uart or use another source" % (name, role, role, role)
        )
    return BoardError("board %s: %s.rx/%s.tx are not set" % (name, role, role))


def esp32_wlan(name, net):
    """board.esp32.Board.wlan: the active station interface of `net` (the network module; None:
    import it)."""
    if net is None:
        try:
            import network as net
        except ImportError:
            raise BoardError("board %s: this MicroPython build has no `network` module (transport 'wifi' needs WiFi)" % name)
    w = net.WLAN(net.STA_IF)
    w.active(True)
    return w


def make_board(desc, argv, kw):
    """board.make_board: board.esp32.Board on an ESP32, else board.host.HostBoard configured from
    argv (--modem PATH --obd PATH --gps PATH; default sys.argv[1:]); kw: the board's own arguments."""
    import sys

    if not isinstance(desc, dict):
        desc = load_board(desc)
    if sys.platform == "esp32":
        from board.esp32 import Board

        return Board(desc, **kw)
    from board.host import HostBoard

    opts = parse_host_args(argv if argv is not None else sys.argv[1:])
    for k in ("modem", "obd", "gps"):
        if k not in kw and opts.get(k):
            kw[k] = opts[k]
    return HostBoard(desc, **kw)


def parse_host_args(argv):
    """make_board's `--modem PATH --obd PATH --gps PATH [--board NAME] [--config F] [--secrets F]`
    (also --name=value) -> dict; other arguments are kept in 'rest'. (The host board's: here, boot only,
    not in board.host, which stays imported while the host runs.)"""
    flags = "modem obd gps board config secrets".split()  # (as data: no interned names)
    out = {"rest": []}
    i = 0
    while i < len(argv):
        a = argv[i]
        if a.startswith("--") and "=" in a and a[2:].split("=", 1)[0] in flags:
            k, v = a[2:].split("=", 1)
            out[k] = v
        elif a.startswith("--") and a[2:] in flags:
            if i + 1 >= len(argv):
                raise BoardError("%s needs a value" % a)
            out[a[2:]] = argv[i + 1]
            i += 1
        else:
            out["rest"].append(a)
        i += 1
    return out


def parse_devtype(text):
    """The co-processor's ATI answer -> devType int, as the official getDeviceType():
    find 'OBD', then the next space, skip 2 characters, parse X.Y -> X*10+Y.
    'OBD2USART V1.4' -> 14. None when the text does not have that shape."""
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode()
    i = text.find("OBD")
    if i < 0:
        return None
    sp = text.find(" ", i)
    if sp < 0:
        return None
    s = text[sp + 2 :]
    dot = s.find(".")
    if dot <= 0 or not s[:dot].isdigit() or len(s) <= dot + 1 or not s[dot + 1].isdigit():
        return None
    return int(s[:dot]) * 10 + int(s[dot + 1])


def board_for_devtype(devtype, names=("oneplus-a", "oneplus-b", "oneplus-h"), dirs=BOARD_DIRS):
    """The board name whose description lists `devtype` (the devType->model mapping lives
    in each boards/*.json 'devtypes'), or None."""
    for n in names:
        try:
            d = load_board(n, dirs=dirs)
        except BoardError:
            continue
        if devtype in d["devtypes"]:
            return n
    return None
