# Device entry (ESP32): board from /board.json, config /config.json + /secrets.json, then the
# telelogger (telelogger/app.py). Create /safe_mode to keep the REPL free (mpremote) instead.
# The build that runs: an OTA slot (/ota/a or /ota/b, made the current directory) when /ota/ptr
# selects one, else the deployed tree (telelogger/otaboot.py, telelogger/OTA.md); any trouble
# there runs the deployed tree. Ctrl-C (mpremote) leaves the REPL at / whichever build ran.
try:
    import os

    os.stat("/safe_mode")
    print("safe mode: /safe_mode exists, telelogger not started")
except OSError:
    try:
        from telelogger import otaboot

        otaboot.select()
    except Exception as e:  # ImportError: a tree without OTA
        print("ota: %r: running the deployed tree" % (e,))
    from telelogger import app

    try:
        app.device_main()
    finally:
        os.chdir("/")
