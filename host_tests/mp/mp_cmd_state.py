# mp-heap: 192K
# Commands between runs of cmdrun (telelogger/cmdrun.py), on both runtimes: the CommandHandler is built for
# each run of queued command messages and dropped with its modules (telelogger.commands, cmdhandlers, cmdseal:
# ~7 KB that stayed on a 32-bit heap after the first command before); what has to outlive a run is data on the
# Telelogger (t.cmd_state): the challenge a device without UTC hands out, the last accepted n (a replay is still
# refused in a later run, with no counter file), the stats.
import sys

import cmdsigner as S
from loopfakes import make

KEY = "mp-cmd-state-key-" + "Zx9Cv8Bn7Ml6" * 2
CFG = {"device_id": "TEST01", "topic_prefix": "fm", "encoding": "json",
       "broker": {"host": "broker.test", "port": 1883, "tls": False},
       "obd": {"pids": {"0C": 1000}}, "secrets": {"hmac_key": KEY}}
REPLY = "fm/TEST01/reply"


async def _dev():
    t, clk, pub, _store, _obd = make(dict(CFG))
    await pub.connect()
    return t, clk, pub


async def _send(t, clk, pub, body):
    """One command in its own run of cmdrun (as Telelogger.msg_task runs it, the module dropped after)
    -> the verified reply, or None when the device sent none."""
    from telelogger import cmdrun

    clk.t += 11000  # past the refused-reply limit (one reply per 10 s to refused messages)
    t.cmdq.append(S.sign(KEY, body, "TEST01"))
    before = len(pub.sent)
    assert await cmdrun.run(t)
    del cmdrun
    sys.modules.pop("telelogger.cmdrun", None)
    got = [p for tp, p, _q in pub.sent[before:] if tp == REPLY]
    assert len(got) <= 1, got
    return S.verify_reply(KEY, got[0], "TEST01") if got else None


def _loaded():
    return [m for m in ("telelogger.commands", "telelogger.cmdhandlers", "telelogger.cmdcheck") if m in sys.modules]


async def test_the_challenge_of_one_run_is_accepted_in_the_next_and_the_code_leaves():
    t, clk, pub = await _dev()
    assert t.utc_ms() is None and t.commands is None
    r = await _send(t, clk, pub, {"cmd": "ping", "n": 1})
    assert r["ok"] is False and "no UTC" in r["error"], r
    chal = r["chal"]
    assert _loaded() == [], _loaded()  # nothing of the command code stays between runs
    assert t.commands is None  # the handler is not kept either: its state is
    r = await _send(t, clk, pub, {"cmd": "ping", "n": 1, "chal": chal})
    assert r["ok"] is True and r["n"] == 1, r
    assert r["chal"] == chal  # the same token while it is valid, across runs
    assert _loaded() == [], _loaded()


async def test_a_replay_is_refused_in_a_later_run_without_a_counter_file():
    t, clk, pub = await _dev()
    assert t.cmd_counter_path is None  # the last n lives in RAM only: it must survive the run
    chal = (await _send(t, clk, pub, {"cmd": "ping", "n": 1}))["chal"]
    assert (await _send(t, clk, pub, {"cmd": "ping", "n": 5, "chal": chal}))["ok"] is True
    r = await _send(t, clk, pub, {"cmd": "ping", "n": 5, "chal": chal})
    assert r["ok"] is False and "replay: n 5 not above last 5" in r["error"], r
    r = await _send(t, clk, pub, {"cmd": "ping", "n": 4, "chal": chal})
    assert r["ok"] is False and "replay" in r["error"], r
    assert (await _send(t, clk, pub, {"cmd": "ping", "n": 6, "chal": chal}))["ok"] is True
    stats = t.cmd_state[2]
    assert (stats["accepted"], stats["rejected"]) == (2, 3), stats


async def test_a_window_changed_between_runs_applies_to_the_next_command():
    t, clk, pub = await _dev()
    chal = (await _send(t, clk, pub, {"cmd": "ping", "n": 1}))["chal"]
    k, on, _w, n = t.cmd_cfg
    t.cmd_cfg = (k, on, 10, n)  # what a config_set of commands.window_s leaves (telelogger/cfgcmd.py)
    r = await _send(t, clk, pub, {"cmd": "ping", "n": 2, "chal": chal})  # issued 11 s ago: older than 10 s
    assert r["ok"] is False and "valid 10 s" in r["error"], r
