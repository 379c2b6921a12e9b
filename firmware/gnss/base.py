# What every GNSS source is (UartGnss, ModemGnss, CoprocGnss): one lifecycle, one shared Fix.
#
#   src.fix()        -> the Fix (gnss/fix.py), updated in place; its position is current (valid)
#                       only while reports keep coming: no fresh one for stale_ms (STALE_MS,
#                       10 s, or three report periods when longer) and fix() marks it invalid.
#                       (0,0) positions and jumps (JumpFilter, on by default) are never taken.
#   await src.run()  the source's whole life as one task: switch the receiver on, read or poll
#                       it, switch it on again after it lost its state (module restart), until
#                       cancelled. Failures are counted (errors, last_error), logged, and retried.
#   src.start()      run() as a task (idempotent); src.stop() cancels it.
#   src.restart()    the receiver lost its state (power cycle, re-init): run() switches it on again.
#   await src.off()  switch the receiver off (standby); a later run()/restart() switches it on.
import asyncio

from core.compat import DEFAULT_CLOCK
from gnss.fix import STALE_MS, Fix, JumpFilter


def make_fix(fix, jump_filter):
    """The source's Fix: `fix` if given (its jump filter replaced when jump_filter is given
    explicitly), else a new one. jump_filter True (the default) = JumpFilter(), None = none."""
    if jump_filter is True:
        if fix is not None:
            return fix
        jump_filter = JumpFilter()
    if fix is None:
        return Fix(jump_filter)
    fix.jump_filter = jump_filter
    return fix


class GnssSource:
    stale_ms = STALE_MS

    def __init__(self, fix=None, jump_filter=True, clock=None, log=None):
        self._fix = make_fix(fix, jump_filter)
        self.clock = clock or DEFAULT_CLOCK
        self.log = log  # anything with warn(fmt, *args) (core log contract); None: counters only
        self.errors = 0
        self.last_error = None
        self._task = None

    def fix(self):
        return self._fix.expire(self.stale_ms)

    def start(self):
        """Start run() as a task (inside a running event loop); returns it."""
        if self._task is None:
            self._task = asyncio.create_task(self.run())
        return self._task

    def stop(self):
        if self._task is not None:
            self._task.cancel()
            self._task = None

    def restart(self):
        pass

    async def off(self):
        pass

    async def run(self):
        raise NotImplementedError

    def _error(self, what, e):
        self.errors += 1
        self.last_error = "%s: %s" % (what, e)
        if self.log is not None:
            self.log.warn("gnss: %s: %s", what, e)
