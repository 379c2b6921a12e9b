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
        poll = select.poll()
        poll.register(self._f, select.POLLIN)
        # MicroPython's ipoll reuses one result tuple (no list per look: the readers look every few ms); CPython's poll
        self._poll = getattr(poll, "ipoll", None) or poll.poll
        self._pollin = select.POLLIN
        self.buf = bytearray(1)  # MicroPython reads a byte at a time into it (a slice would be a memoryview per byte)

    def _readable(self):
        for ev in self._poll(0):
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
        # MicroPython: a stream's readinto fills the whole buffer, so a longer one would block until all of it came;
        # one byte at a time instead, the first (poll said it is there), then each while poll says one more is
        b = self.buf
        n = 0
        while n < len(buf) and (n == 0 or self._readable()):
            if not self._f.readinto(b):
                break
            buf[n] = b[0]
            n += 1
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
