# Runs before main.py on the ESP32. Keep it trivial: an exception here leaves no REPL-friendly
# state, so everything that can fail happens in main.py (telelogger/app.device_main).
import gc

gc.collect()
