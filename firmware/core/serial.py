# SerialPath: a tty or pty path as a stream (core.stream interface), for the host (MicroPython unix,
# CPython): a USB SIM7600's AT port, the ONE+ over USB, a simulator's pty. Not imported on the ESP32,
# where the board opens machine.UARTs (core.stream.UartStream); `from core.stream import SerialPath`
# still works.


class SerialPath:
    """A tty or pty path opened raw: a USB SIM7600's AT port on Linux (/dev/ttyUSB2),
    the ONE+ over USB, or a simulator's pty. Works on CPython and MicroPython unix."""

    def __init__(self, path, raw=True):
        import select

        self.path = path
        self._f = open(path, "r+b", buffering=0) if _is_cpython() else open(path, "r+b")
        if raw:
            _set_raw(self._f)
        self._poll = select.poll()
        self._poll.register(self._f, select.POLLIN)
        self._pollin = select.POLLIN

    def _readable(self):
        for ev in self._poll.poll(0):
            # entries are (obj, flags) tuples on both runtimes
            if ev[1] & self._pollin:
                return True
        return False

    def readinto(self, buf):
        if not self._readable():
            return 0
        if _is_cpython():
            import os

            try:
                data = os.read(self._f.fileno(), len(buf))
            except OSError:
                return 0
            n = len(data)
            buf[:n] = data
            return n
        # MicroPython: a blocking readinto on a pty returns what is there (>= 1 byte)
        n = self._f.readinto(memoryview(buf)[:1]) or 0
        # drain whatever else is ready without blocking
        mv = memoryview(buf)
        while n < len(buf) and self._readable():
            k = self._f.readinto(mv[n : n + 1]) or 0
            if not k:
                break
            n += k
        return n

    def write(self, data):
        mv = memoryview(data)
        done = 0
        while done < len(mv):
            n = self._f.write(mv[done:])
            if n:
                done += n
        return done

    def close(self):
        try:
            self._f.close()
        except OSError:
            pass


def _is_cpython():
    import sys

    return sys.implementation.name == "cpython"


def _set_raw(f):
    try:
        # termios: CPython's, or MicroPython unix's module; neither exists on the ESP32 (ImportError below)
        import termios  # pyright: ignore[reportMissingImports] - host-only, not in the ESP32 stubs

        if _is_cpython():
            import tty  # pyright: ignore[reportMissingImports] - CPython-only

            tty.setraw(f.fileno(), termios.TCSANOW)
        else:
            termios.setraw(f.fileno() if hasattr(f, "fileno") else f)
    except (ImportError, OSError, AttributeError, TypeError):
        pass  # not a tty (e.g. a FIFO in tests): nothing to configure
