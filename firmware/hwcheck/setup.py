# hwcheck: the board and the config, before any area runs (imported by hwcheck.main, then dropped).
import sys

from hwcheck import FAIL, HOST_BOARD, INFO, _arg, drop_new, format_item, why


def board(argv, host, out):
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

    return config.load(path, secrets)
