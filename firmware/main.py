# Device entry (ESP32): board from /board.json, config /config.json + /secrets.json, then the
# telelogger (telelogger/app.py). Create /safe_mode to keep the REPL free (mpremote) instead.
try:
    import os

    os.stat("/safe_mode")
    print("safe mode: /safe_mode exists, telelogger not started")
except OSError:
    from telelogger import app

    app.device_main()
