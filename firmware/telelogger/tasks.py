# What the telelogger's modules share, so none of them imports another for it: the run states,
# calling a function that may be sync or async, and forgetting a module imported for one job.

RUN = "run"  # sampling and sending
FLUSH = "flush"  # entering standby: last record, draining the queue
STANDBY = "standby"  # modem off, polling the battery voltage


def isawait(r):
    """True when `r` is a coroutine/generator that must be awaited (both runtimes)."""
    return r is not None and hasattr(r, "send")


async def acall(fn, *args):
    r = fn(*args)
    if isawait(r):
        r = await r
    return r


def unload(name):
    """Forgets module telelogger.<name> (imported for one job: validation, a key table, standby)
    so that its heap can be collected: out of sys.modules and off the package."""
    from core.unload import forget

    forget("telelogger." + name)
