# Boot only: import the modules that stay imported while the telelogger runs, first, before anything
# that is imported for boot and dropped again (the board description, the config validator, the
# assembly, the modem bring-up). What lives for good is then packed at the bottom of the heap and
# what boot drops leaves one free region above it instead of holes between resident bytecode. It
# matters most for MicroPython's interned-name pool: past 1,260 names it allocates its next table in
# one piece of ~9 KB, which a fragmented heap cannot give (the "allocating 1280 bytes" MemoryError).
#
#   preload(cfg_path)   # in main: before the board, the config and the assembly
#
# The lists are per role; the modules each one pulls in come with it. The board's own modules (its
# streams: core.stream on the ESP32, core.serial on a host) come with the board. host_tests/test_boot_heap.py checks
# that what make sim keeps imported while it runs is what preload imported.
# The code is telelogger/appboot.py's (modules, preload_resident): the device boots with that one
# module. This module keeps the tools' and tests' API.
from telelogger.appboot import modules  # noqa: F401
from telelogger.appboot import preload_resident as preload  # noqa: F401
