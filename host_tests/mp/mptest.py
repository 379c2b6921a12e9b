# Tiny test runner shared by both runtimes. A module `mp_*.py` defines `test_*`
# functions (plain or async). Under MicroPython:  micropython host_tests/mp/mptest.py mp_foo
# runs them and prints one `MPTEST <name> PASS|FAIL|SKIP` line each and a summary line;
# under CPython, host_tests/test_mp_suite.py collects the same functions as pytest tests.
import asyncio
import sys


class Skip(Exception):
    pass


def run_test(fn):
    r = fn()
    if r is not None and hasattr(r, "send"):  # coroutine / generator-based coroutine
        try:
            asyncio.run(r)
        finally:
            _fresh_loop()


def _fresh_loop():
    # MicroPython keeps one global loop: tasks a test cancelled but never let run again would
    # keep their objects alive into the next test. A new loop drops them.
    if sys.implementation.name == "micropython":
        asyncio.new_event_loop()


def raises(exc, fn, *args, **kw):
    """Call fn and require it to raise `exc`; returns the exception."""
    try:
        r = fn(*args, **kw)
        if r is not None and hasattr(r, "send"):
            asyncio.run(r)
    except exc as e:
        return e
    raise AssertionError("%s not raised" % exc.__name__)


async def araises(exc, aw):
    try:
        await aw
    except exc as e:
        return e
    raise AssertionError("%s not raised" % exc.__name__)


async def araises_at(kind, aw):
    """aw raises an at.engine.ATError of this kind (at.engine.TIMEOUT, ERROR, CME, ...): returned."""
    from at.engine import ATError

    e = await araises(ATError, aw)
    assert e.kind == kind, "ATError of kind %r, not %r: %s" % (e.kind, kind, e)
    return e


def main(modname):
    import gc

    mod = __import__(modname)
    names = sorted(n for n in dir(mod) if n.startswith("test_"))
    passed = failed = skipped = 0
    for n in names:
        gc.collect()
        try:
            run_test(getattr(mod, n))
            print("MPTEST %s PASS" % n)
            passed += 1
        except Skip as e:
            print("MPTEST %s SKIP %s" % (n, e))
            skipped += 1
        except Exception as e:  # report and carry on with the next test
            failed += 1
            print("MPTEST %s FAIL %s: %s" % (n, type(e).__name__, e))
            try:
                sys.print_exception(e)  # MicroPython
            except AttributeError:
                import traceback

                traceback.print_exc()
    try:
        import micropython

        peak = micropython.mem_peak()
    except (ImportError, AttributeError):
        peak = -1
    print("MPSUMMARY %s passed=%d failed=%d skipped=%d mem_peak=%d" % (modname, passed, failed, skipped, peak))
    return failed


if __name__ == "__main__":
    sys.exit(1 if main(sys.argv[1]) else 0)
