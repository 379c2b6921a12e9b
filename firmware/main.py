# Device entry (ESP32): board from /board.json, config /config.json + /secrets.json, then the
# telelogger (telelogger/app.py). Create /safe_mode to keep the REPL free (mpremote) instead.
# The build that runs: an OTA slot (/ota/a or /ota/b, made the current directory) when /ota/ptr
# selects one, else the deployed tree (telelogger/otaboot.py, telelogger/FORMAT.md "OTA updates"). Trouble choosing,
# or a slot that cannot even import the app, runs the deployed tree. Ctrl-C (mpremote) leaves the
# REPL at /, whichever build ran.
R = "/"  # the filesystem root (tests run this file on a folder)
try:
    import os

    os.stat("%ssafe_mode" % R)  # (a literal of up to 10 characters would be an interned name: this runs as source)
    print("safe mode: %ssafe_mode exists, telelogger not started" % R)
except OSError:
    import sys

    keep = list(sys.modules)
    slot = "-"
    try:
        from telelogger import otaboot

        slot = otaboot.select(R)
    except Exception as e:  # ImportError: a tree without OTA
        print("ota: %r: running the deployed tree" % (e,))
    otaboot = None
    try:
        try:
            from telelogger import app
        except Exception as e:
            if slot == "-":
                raise
            print("ota: slot %s: %r: running the deployed tree" % (slot, e))
            for m in [m for m in sys.modules if m not in keep]:
                del sys.modules[m]
            os.chdir(R)
            from telelogger import otaboot

            otaboot.fallback(e, R)
            otaboot = e = None
            from telelogger import app
        app.device_main()
    finally:
        os.chdir(R)
