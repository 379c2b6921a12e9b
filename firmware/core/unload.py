# Forgetting modules that were imported for one job (boot, validation, a bring-up, a table lookup),
# so their bytecode can be collected: on a stock ESP32 every imported .mpy lives in the heap. The one
# place that knows how: out of sys.modules AND off the parent package (MicroPython keeps a submodule as
# an attribute of its package, which alone would keep it alive).
import sys


def forget(name):
    """Forget module `name` (dotted): sys.modules and the attribute its parent package holds."""
    sys.modules.pop(name, None)
    parent, _, attr = name.rpartition(".")
    pkg = sys.modules.get(parent) if parent else None
    if pkg is not None and getattr(pkg, attr, None) is not None:
        try:
            delattr(pkg, attr)
        except (AttributeError, TypeError):
            pass


def drop(prefix, keep=()):
    """Forget the modules named prefix* that are not in keep."""
    for name in list(sys.modules):  # a copy: forget() changes sys.modules
        if name.startswith(prefix) and name not in keep:
            forget(name)
