# What the telelogger does with the command messages it queued (Telelogger.msg_task imports this module
# when one arrives and forgets it again: a running car rarely gets a command). The checks are
# telelogger/commands.py's (a CommandHandler, built here per run of commands from the state the last one
# left), the handlers telelogger/cmdhandlers.py's. Nothing of these modules may stay referenced after run()
# returns: they are dropped again.
import json

from core.compat import const
from core.errors import lookup
from telelogger.tasks import isawait, unload

# Refused messages (unauthenticated, replayed, malformed, or commands off) get at most one reply per
# _REFUSED_REPLY_MS; the others are dropped silently (counted: cmds_unanswered), so that anyone able
# to publish on the cmd topic cannot make the device publish a (signed) reply per message.
_REFUSED_REPLY_MS = const(10000)


def command_handler(t):
    """-> (handler, built): the CommandHandler for this run of commands and whether it was built here; None
    when commands are off or no hmac_key is configured. A handler given to the Telelogger (t.commands: tests)
    is used as it is; otherwise one is built from t.cmd_cfg with the state the last one left
    (t.cmd_state: the last accepted n, the challenge, the stats), so that between commands nothing of the
    command code (telelogger.commands, cmdseal, cmdhandlers: ~7 KB on a 32-bit heap) stays loaded."""
    if t.commands is not None:
        return t.commands, False
    key, enabled, window_s, nonces = t.cmd_cfg
    if not (key and enabled):
        return None, False
    from telelogger.cmdhandlers import handlers
    from telelogger.commands import CommandHandler

    h = CommandHandler(key, t.clock, handlers(t), utc_ms=t.utc_ms, window_s=window_s, nonces=nonces,
                       counter_path=t.cmd_counter_path, device_id=t.device_id)
    state = getattr(t, "cmd_state", None)
    if state is not None:  # the counter as read from flash again, unless RAM had a later one (no file, a failed write)
        n, h.chal, stats = state
        stats["counter_error"] = h.stats["counter_error"]
        h.stats = stats
        h.last_n = max(h.last_n, n)
    return h, True


async def run(t):
    """Answers every queued command message (t.cmdq), oldest first -> True: this module may be
    forgotten (Telelogger.msg_task)."""
    h, built = command_handler(t)
    try:
        return await _answer(t, h, built)
    finally:
        if built and h is not None:  # its state for the next one; the command code leaves the heap
            t.cmd_state = (h.last_n, h.chal, h.stats)
            h = None
            for m in ("commands", "cmdhandlers", "cmdseal"):
                unload(m)


async def _answer(t, h, built):
    # (in steps: each function's bytecode is one allocation, on a heap that has more room in small pieces)
    while t.cmdq:
        payload = t.cmdq.pop(0)
        t.counters["cmds"] += 1
        reply, refused = await command(t, h, built, payload)
        if refused:
            now = t.now()
            last = getattr(t, "refused_reply_ms", None)  # when a refused command last got a reply
            if last is not None and now - last < _REFUSED_REPLY_MS:
                t.counters["cmds_unanswered"] += 1
                continue
            t.refused_reply_ms = now
        await send(t, reply)
        if t.reboot_req:
            await lookup("telelogger.reboot", "reboot", t)  # (a build on trial past its deadline reboots so too)
    return True


# (the step helpers here bear names the firmware interns anyway: a new name would stay in RAM for good)
async def send(t, reply):
    try:
        async with t.lock:
            await t.pub.publish(t.t_cmd[:-3] + "reply", reply, 1)  # <prefix>/<id>/reply
    except MemoryError:
        raise
    except Exception as e:
        t.note("warn", "reply not sent: %s", e)


async def command(t, h, built, payload):
    """One command message -> (reply bytes, refused: whether the handler rejected it)."""
    if h is None:
        return b'{"ok":false,"error":"commands disabled (commands.enabled is false or no secrets.hmac_key)"}', True
    if built:  # a config_set of commands.window_s applies from the next message on
        h.window_ms = t.cmd_cfg[2] * 1000
    stats = getattr(h, "stats", None)  # CommandHandler counts what it rejects
    before = stats["rejected"] if stats else None
    try:
        reply = h.handle(payload)
        if isawait(reply):
            reply = await reply
        return reply, stats is not None and stats["rejected"] != before
    except MemoryError:
        raise
    except Exception as e:
        return json.dumps({"ok": False, "error": str(e)}).encode(), True
