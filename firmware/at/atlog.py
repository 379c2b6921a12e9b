# The AT transcript log (config debug.at_log): the conversation in the seed thread's format, which
# the transcript doctor reads. Its own module so that it costs no RAM unless the log is on
# (telelogger.app imports it only then).
from at.lines import to_text
from at.redact import REDACTED, secret_at
from core.compat import DEFAULT_CLOCK, const

_HOLD_MAX = const(4096)  # RECV bytes held back at most while a command with credentials is in flight


class ATLog:
    """Writes '=== SENT@<ms> ===' / '=== RECV@<ms> ===' blocks through write(text). The engine
    passes it redacted data (credentials, certificate/key bodies, incoming payloads) and turns it
    off when write raises (e.g. OSError: the flash is full)."""

    def __init__(self, write, clock=None):
        self.write = write
        self.clock = clock or DEFAULT_CLOCK
        self.t0 = self.clock.ticks_ms()
        self.hold = None  # RECV bytes held back while a command with credentials is in flight
        self.secret = None  # what to mask in them

    # -- what the engine calls ---------------------------------------------------------------
    def command(self, cmd):
        """A command line goes out. With credentials: logged redacted, and the RECV bytes are held
        until done() so the module's echo of it can be masked too."""
        i = secret_at(cmd)
        sec = [cmd[i:].encode()] if i >= 0 else []
        if cmd.startswith("AT+CCERTDOWN="):  # its '>' data body is secret (certificates and private keys)
            sec.append(None)  # the data body, known at data()
        if sec:
            self.secret = sec
            self.hold = bytearray()
        self.block("SENT", ((cmd[:i] + REDACTED if i >= 0 else cmd) + "\r").encode())

    def data(self, cmd, data):
        """A '>' data body went out (certificates and keys only as their size)."""
        sec = self.secret
        if sec and None in sec:
            sec[sec.index(None)] = bytes(data)
            self.block("SENT", ("<%d bytes redacted>" % len(data)).encode())
        else:
            self.block("SENT", data)

    def received(self, buf, n, masked):
        """buf[:n] arrived; masked = [start, end, ...] of secret body bytes in it ('*' in the log)."""
        if masked:
            b = bytearray(buf[:n])
            for k in range(0, len(masked), 2):
                for j in range(masked[k], masked[k + 1]):
                    b[j] = 42
            data = b
        else:
            data = memoryview(buf)[:n]
        h = self.hold
        if h is None:
            self.block("RECV", data)
        elif len(h) < _HOLD_MAX:
            h.extend(data)
        else:  # bounded: the rest of a long exchange is logged by size only
            self.note("(%d received bytes not logged: a command with credentials was in flight)" % n)

    def done(self):
        """The command in flight completed: log what was held, secrets masked."""
        h = self.hold
        if h is None:
            return
        self.hold = None
        b = bytes(h)
        for x in self.secret or ():
            if x:
                b = b.replace(x, REDACTED.encode())
        self.secret = None
        if b:
            self.block("RECV", b)

    def block(self, name, data):
        """One '=== <name>@<ms> ===' block of data: name "SENT" or "RECV"."""
        t = self.clock.diff(self.clock.ticks_ms(), self.t0)
        self.write("=== %s@%d ===\n%s\n==================\n" % (name, t, to_text(data)))

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
