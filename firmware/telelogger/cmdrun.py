# What the telelogger does with the command messages it queued (Telelogger.msg_task imports this module
# when one arrives and forgets it again: a running car rarely gets a command). The checks are
# telelogger/commands.py's (a CommandHandler, built here on the first command), the handlers
# telelogger/cmdhandlers.py's. Nothing of this module may stay referenced after run() returns.
import json

from core.compat import const
from telelogger.status import reboot  # the reboot after a reply (status.py: a build on trial uses it too)
from telelogger.tasks import isawait

# Refused messages (unauthenticated, replayed, malformed, or commands off) get at most one reply per
# _REFUSED_REPLY_MS; the others are dropped silently (counted: cmds_unanswered), so that anyone able
# to publish on the cmd topic cannot make the device publish a (signed) reply per message.
_REFUSED_REPLY_MS = const(10000)


def command_handler(t):
    """The CommandHandler of the telelogger `t`, built on the first command and kept as t.commands
    (telelogger.commands is imported only then); None when commands are off or no hmac_key is configured."""
    if t.commands is not None:
        return t.commands
    key, enabled, window_s, nonces = t.cmd_cfg
    if not (key and enabled):
        return None
    from telelogger.cmdhandlers import handlers
    from telelogger.commands import CommandHandler

    t.commands = CommandHandler(key, t.clock, handlers(t), utc_ms=t.utc_ms, window_s=window_s, nonces=nonces,
                                counter_path=t.cmd_counter_path, device_id=t.device_id)
    return t.commands


async def run(t):
    """Answers every queued command message (t.cmdq), oldest first -> True: this module may be
    forgotten (Telelogger.msg_task)."""
    while t.cmdq:
        payload = t.cmdq.pop(0)
        t.counters["cmds"] += 1
        h = command_handler(t)
        refused = True
        if h is None:
            reply = b'{"ok":false,"error":"commands disabled (commands.enabled is false or no secrets.hmac_key)"}'
        else:
            stats = getattr(h, "stats", None)  # CommandHandler counts what it rejects
            before = stats["rejected"] if stats else None
            try:
                reply = h.handle(payload)
                if isawait(reply):
                    reply = await reply
                refused = stats is not None and stats["rejected"] != before
            except MemoryError:
                raise
            except Exception as e:
                reply = json.dumps({"ok": False, "error": str(e)}).encode()
        if refused:
            now = t.now()
            last = getattr(t, "refused_reply_ms", None)  # when a refused command last got a reply
            if last is not None and now - last < _REFUSED_REPLY_MS:
                t.counters["cmds_unanswered"] += 1
                continue
            t.refused_reply_ms = now
        try:
            async with t.lock:
                await t.pub.publish(t.t_cmd[:-3] + "reply", reply, 1)  # <prefix>/<id>/reply
        except MemoryError:
            raise
        except Exception as e:
            t.note("warn", "reply not sent: %s", e)
        if t.reboot_req:
            await reboot(t)
    return True
