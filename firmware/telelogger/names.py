# Module names made interned names before the resident modules load. The resident modules name the modules
# they import for one job in string literals (core.errors.lookup("modem.cmqtt_rare", ...)), and a literal of
# more than 10 characters is a str object of its module (16 bytes and a data block, for as long as the module
# is loaded) unless it is an interned name when the module loads (mp_obj_new_str finds it; a module's name is
# one once that module has been imported, which for most of these happens later or never). Loading this module
# first makes them names: telelogger/appboot.py's preload_resident imports it before the resident modules of
# a cellular device and forgets it again. Its only code is a function that is never called: each import in it
# puts the dotted name in this module's table of names, which loading the .mpy interns (~15 str objects, ~0.7 KB
# of heap, become names that cost ~20 bytes each, most of which the run interns anyway).
# host_tests/test_names.py keeps the list equal to the module names those modules have as literals.


def _():
    import modem.bringup  # noqa: F401
    import modem.cmqtt_ops  # noqa: F401
    import modem.cmqtt_rare  # noqa: F401
    import modem.cmqtt_rx  # noqa: F401
    import modem.cmqtt_svc  # noqa: F401
    import modem.code_events  # noqa: F401
    import modem.code_texts  # noqa: F401
    import modem.netreg  # noqa: F401
    import modem.nettime  # noqa: F401
    import net.cellular_fail  # noqa: F401
    import net.cellular_setup  # noqa: F401
    import obdii.adapter  # noqa: F401
    import obdii.elmtext  # noqa: F401
    import obdii.gnifo  # noqa: F401
    import obdii.pidrow  # noqa: F401
