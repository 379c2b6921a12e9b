# The status's names for tools and tests (scripts/soak.py, host_tests): status and publish_status are
# telelogger/statusmsg.py's, reboot telelogger/reboot.py's, forwarded (__getattr__ below). The firmware itself
# reaches them through core.errors.lookup (cmdhandlers, cmdrun, standby_io) and the poll task imports statusmsg
# per interval (telelogger/sampler.py poll_task); the watchdog task is telelogger/tasks.py's wdt_task. Nothing
# on the device's path imports this module.
from telelogger.tasks import unload


def __getattr__(name):
    """status.status, publish_status, reboot: telelogger/statusmsg.py's (reboot: telelogger/reboot.py's),
    imported for the caller and dropped from sys.modules again (the function keeps what it needs for as long
    as the caller does)."""
    if name not in "status publish_status reboot".split():  # (one str: a tuple holds a str per name)
        raise AttributeError(name)
    m = "reboot" if name == "reboot" else "statusmsg"
    mod = __import__("telelogger." + m, None, None, (name,))
    try:
        return getattr(mod, name)
    finally:
        mod = None
        unload(m)
