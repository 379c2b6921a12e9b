# Forgetting modules that were imported for one job (boot, validation, a bring-up, a table lookup),
# so their bytecode can be collected: on a stock ESP32 every imported .mpy lives in the heap.


def drop(prefix, keep=()):
    """Forget the modules named prefix* that are not in keep: out of sys.modules and off the parent
    package (a package attribute would keep the module alive)."""
    import sys

    for name in [m for m in sys.modules if m.startswith(prefix) and m not in keep]:
        sys.modules.pop(name, None)
        parent, _, attr = name.rpartition(".")
        pkg = sys.modules.get(parent)
        if pkg is not None and getattr(pkg, attr, None) is not None:
            try:
                delattr(pkg, attr)
            except (AttributeError, TypeError):
                pass
