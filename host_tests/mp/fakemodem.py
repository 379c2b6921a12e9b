# A scripted modem peer for AT-engine tests on both runtimes: it sits behind a BufferStream,
# splits what the engine writes into command lines (and '>' data entries of an exact length), and
# answers from a rule table. Tests feed extra bytes (URCs, late results) with `feed()`.
from core.stream import BufferStream


class ScriptedModem:
    def __init__(self, echo=False):
        self.stream = BufferStream(on_write=self._on_write)
        self.echo = echo
        self.rules = {}  # command line -> bytes, or fn(cmd) -> bytes
        self.prompts = {}  # command line -> (n, reply after exactly n data bytes)
        self.cmds = []  # command lines received, in order
        self.data = []  # data entries received
        self._acc = bytearray()
        self._want = 0
        self._after = b""

    def feed(self, b):
        self.stream.feed(b)

    def _on_write(self, b):
        for c in b:
            if self._want:
                self._acc.append(c)
                self._want -= 1
                if not self._want:
                    d = bytes(self._acc)
                    self._acc = bytearray()
                    self.data.append(d)
                    if self.echo:
                        self.feed(d)
                    self.feed(self._after)
                continue
            if c == 13:
                cmd = bytes(self._acc).decode()
                self._acc = bytearray()
                self._command(cmd)
            else:
                self._acc.append(c)

    def _command(self, cmd):
        self.cmds.append(cmd)
        if self.echo:
            self.feed(cmd.encode() + b"\r")
        if cmd in self.prompts:
            n, after = self.prompts[cmd]
            self._want = n
            self._after = after
            self.feed(b"\r\n>")
            return
        r = self.rules.get(cmd)
        if r is None:
            return  # silence
        if not isinstance(r, (bytes, bytearray)):
            r = r(cmd)
        if r:
            self.feed(r)
