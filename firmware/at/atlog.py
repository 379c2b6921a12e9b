# The AT transcript log (config debug.at_log): the conversation in the seed thread's format, which
# the transcript doctor reads. Its own module so that it costs no RAM unless the log is on
# (telelogger.app imports it only then).
from at.lines import to_text
from core.compat import DEFAULT_CLOCK


class ATLog:
    """Writes '=== SENT@<ms> ===' / '=== RECV@<ms> ===' blocks through write(text). The engine
    passes it redacted data (credentials, certificate/key bodies, incoming payloads) and turns it
    off when write raises (e.g. OSError: the flash is full)."""

    def __init__(self, write, clock=None):
        self.write = write
        self.clock = clock or DEFAULT_CLOCK
        self.t0 = self.clock.ticks_ms()

    def _block(self, kind, data):
        t = self.clock.diff(self.clock.ticks_ms(), self.t0)
        self.write("=== %s@%d ===\n%s\n==================\n" % (kind, t, to_text(data)))

    def sent(self, data):
        self._block("SENT", data)

    def recv(self, data):
        self._block("RECV", data)

    def note(self, text):
        """A line of our own between the blocks (the doctor shows it as an application print)."""
        self.write("%s\n" % text)

    def close(self):
        c = getattr(self.write, "close", None)
        if c is not None:
            c()


class RotatingFile:
    """A write(text) target for ATLog on flash: at most max_bytes (bytes, as stored: UTF-8) per
    file, then the file becomes <path>.1 (replacing the previous one) and a new one starts: two
    files at most."""

    def __init__(self, path, max_bytes, fs=None):
        import os

        self.path = path
        self.max_bytes = max_bytes
        self.os = fs or os
        self.f = open(path, "ab")
        try:
            self.size = self.os.stat(path)[6]
        except OSError:
            self.size = 0

    def __call__(self, text):
        b = text.encode() if isinstance(text, str) else text
        n = len(b)
        if self.size + n > self.max_bytes and self.size:
            self.f.close()
            try:
                self.os.rename(self.path, self.path + ".1")
            except OSError:
                pass
            self.f = open(self.path, "wb")
            self.size = 0
        self.f.write(b)
        self.f.flush()
        self.size += n

    def close(self):
        self.f.close()
