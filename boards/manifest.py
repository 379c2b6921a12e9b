# ruff: noqa: F821  (include/package/module are the manifest language, defined by the MicroPython build)
# Freeze this firmware into a MicroPython image for the ESP32, so its bytecode and constants run
# from flash instead of being loaded into RAM (the host measurements in `make bench` count the
# bytecode in the heap because .mpy files loaded from a filesystem live in RAM).
#
#   cd micropython/ports/esp32
#   make BOARD=ESP32_GENERIC FROZEN_MANIFEST=/path/to/this/repo/boards/manifest.py
#   esptool --chip esp32 --port /dev/ttyUSB0 write-flash -z 0x1000 build-ESP32_GENERIC/firmware.bin
#   make deploy PORT=/dev/ttyUSB0 BOARD=oneplus-b DEPLOY_ARGS=--frozen   # boot/main, board, config, secrets only
#
# Paths are relative to this file (MicroPython manifest rules). Not built in CI: no ESP-IDF here.
include("$(PORT_DIR)/boards/manifest.py")  # the port's own frozen modules (asyncio, ...)
for pkg in ("core", "at", "modem", "net", "obdii", "gnss", "telelogger", "board", "hwcheck"):
    package(pkg, base_path="../firmware", opt=2)
