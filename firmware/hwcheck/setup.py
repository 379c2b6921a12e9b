# hwcheck: the arguments, the board and the config, before any area runs (imported by
# hwcheck.main, then dropped).
import sys

from hwcheck.common import FAIL, HOST_BOARD, INFO, drop_new, format_item, why

# what the areas read of the config (the rest is dropped: RAM)
_KEEP = ("device_id", "transport", "topic_prefix", "broker", "cellular", "gnss")
_KEEP_SECRETS = ("mqtt_user", "mqtt_pass", "apn_user", "apn_pass", "certs")


def _arg(argv, name, default=None):
    for i in range(len(argv)):
        if argv[i] == name and i + 1 < len(argv):
            return argv[i + 1]
        if argv[i].startswith(name + "="):
            return argv[i][len(name) + 1 :]
    return default


def prepare(argv, board, cfg, timeouts, gnss, power_on, out):
    """-> (board, cfg, [timeout_ms, reg_timeout_ms, gnss_timeout_ms], gnss, power_on, board_known),
    or None after a FAIL line (a board file or --config that does not load, a bad number)."""
    if argv is None:
        argv = sys.argv[1:]
    host = sys.platform != "esp32"
    for i, flag in ((0, "--timeout"), (1, "--reg-timeout"), (2, "--gnss-timeout")):
        v = _arg(argv, flag)
        if v:
            try:
                timeouts[i] = int(float(v) * 1000)
            except ValueError:
                out(format_item(FAIL, "config", "%s %r is not a number of seconds" % (flag, v), "give seconds, e.g. %s 10" % flag))
                return None
    gnss = _arg(argv, "--gnss", gnss)
    if gnss is None and host and _arg(argv, "--gps"):
        gnss = "uart"
    if power_on is None:
        power_on = not host  # a host's power pin is a fake
    known = True
    own = board is None
    if own:
        board, known = make(argv, host, out)
        if board is None:
            return None
    if cfg is None:
        cfg = config(argv, host, out)
        if cfg is False:
            if own:
                board.close()
            return None
    return board, cfg, timeouts, gnss, power_on, known


def make(argv, host, out):
    """(board, known) from --board or the deployed /board.json; (None, False) after a FAIL line.
    known: False when a host had no board file and the generic one was taken."""
    from board import BoardError, load_board, make_board

    name = _arg(argv, "--board")
    known = True
    try:
        try:
            desc = load_board(name)  # None: the deployed /board.json
        except BoardError:
            if name or not host:
                raise
            desc = load_board(HOST_BOARD)  # a host without board.json: pins do not matter
            known = False
        return make_board(desc, argv), known
    except Exception as e:
        out(format_item(FAIL, "board file", why(e), "deploy with scripts/deploy.py --board NAME (writes /board.json)"))
        return None, False


def config(argv, host, out):
    """The config dict (None: defaults apply), or False after a FAIL line (a --config that does
    not load). On the device config.json (+ secrets.json) as the telelogger loads them; a config
    that does not load there is an INFO line (the check still runs with defaults)."""
    before = set(sys.modules)
    path = _arg(argv, "--config")
    try:
        if path:
            return _load(path, _arg(argv, "--secrets"))
        if host:
            return None
        try:
            open("secrets.json").close()
            sec = "secrets.json"
        except OSError:
            sec = None
        try:
            return _load("config.json", sec)
        except ImportError as e:
            out(format_item(INFO, "config", "not loaded (%s)" % e))
        except Exception as e:
            out(format_item(INFO, "config", "config.json not used (%s): defaults apply" % why(e)))
        return None
    except Exception as e:
        out(format_item(FAIL, "config", "%s: %s" % (path, why(e)), "fix what it names in the file and run the check again"))
        return False
    finally:
        drop_new(before)  # telelogger.config is needed once


def _load(path, secrets):
    from telelogger import config

    cfg = config.load(path, secrets)
    out = {}
    for k in _KEEP:
        if k in cfg:
            out[k] = cfg[k]
    sec = cfg.get("secrets") or {}
    out["secrets"] = {}
    for k in _KEEP_SECRETS:
        if k in sec:
            out["secrets"][k] = sec[k]
    return out
