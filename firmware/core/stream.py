# Byte-stream adapters: the one small interface every driver (AT engine, ELM327 link,
# NMEA reader) talks to. Nothing here imports `machine`.
#
# The agreed interface ("a stream"):
#   readinto(buf) -> int   non-blocking; copies up to len(buf) ready bytes, returns 0 if none
#   write(data)   -> int   writes all of `data` (bytes/bytearray/memoryview)
#   close()
# Readers poll: when readinto() returns 0 they `await sleep_ms(poll_ms)`.
# Here: UartStream (the ESP32's UARTs). SerialPath (host ttys/ptys) is in core/serial.py.


class UartStream:
    """Adapter for an already-configured machine.UART (ESP32). The board layer builds
    the UART (pins, baud, rxbuf) and hands it here."""

    def __init__(self, uart):
        self._u = uart

    def readinto(self, buf):
        if not self._u.any():
            return 0
        n = self._u.readinto(buf)
        return n or 0

    def write(self, data):
        # the ESP32 port copies all of it into the TX ring buffer at once: no memoryview made then
        n = self._u.write(data) or 0
        if n < len(data):
            mv = memoryview(data)
            while n < len(mv):
                n += self._u.write(mv[n:]) or 0
        return n

    def close(self):
        try:
            self._u.deinit()
        except Exception:
            pass


def __getattr__(name):
    # SerialPath (host only) lives in core/serial.py: no bytecode for it on the device
    if name == "SerialPath":
        from core.serial import SerialPath

        return SerialPath
    raise AttributeError(name)
