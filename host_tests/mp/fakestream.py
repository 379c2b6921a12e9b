# BufferStream: the in-memory stream of the tests (moved out of firmware/core/stream.py: the device
# never needs it). Runs on both runtimes.


class BufferStream:
    """In-memory fake: tests `feed()` bytes the peer 'sends' and read back `written`."""

    def __init__(self, on_write=None):
        self._rx = bytearray()
        self._pos = 0
        self.written = bytearray()
        self._on_write = on_write

    def feed(self, data):
        if self._pos and self._pos == len(self._rx):
            self._rx = bytearray()
            self._pos = 0
        self._rx += data

    def readinto(self, buf):
        n = min(len(buf), len(self._rx) - self._pos)
        if n:
            buf[:n] = memoryview(self._rx)[self._pos : self._pos + n]
            self._pos += n
        return n

    def write(self, data):
        self.written += data
        if self._on_write:
            self._on_write(bytes(data))
        return len(data)

    def close(self):
        pass
