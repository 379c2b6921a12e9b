# What the telelogger's task modules (loop, sampler, status, standby) share, so none of them
# imports another for it: the run states and calling a function that may be sync or async.

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
