# A scripted modem peer for AT-engine tests on both runtimes: it sits behind a BufferStream,
# splits what the engine writes into command lines (and '>' data entries of an exact length), and
# answers from a rule table. Tests feed extra bytes (URCs, late results) with `feed()`.
from fakestream import BufferStream


class LinePeer:
    """The modem side of a BufferStream: splits what the engine writes into command lines (CR) and
    '>' data entries of an exact byte count. Subclasses answer in _command(cmd) -> bytes and start a
    data entry with `return self._prompt(n, fn)`, where fn(data) -> bytes is the reply after it."""

    def __init__(self):
        self.stream = BufferStream(on_write=self._on_write)
        self.cmds = []  # command lines received, in order
        self.data = []  # data entries received
        self._acc = bytearray()
        self._want = 0
        self._on_data = None

    def feed(self, b):
        self.stream.feed(b)

    def _prompt(self, n, fn):
        self._want = n
        self._on_data = fn
        return b"\r\n>"

    def _on_write(self, b):
        for c in b:
            if self._want:
                self._acc.append(c)
                self._want -= 1
                if not self._want:
                    d = bytes(self._acc)
                    self._acc = bytearray()
                    self.data.append(d)
                    r = self._on_data(d)
                    if r:
                        self.feed(r)
                continue
            if c == 13:
                cmd = str(bytes(self._acc), "utf-8")
                self._acc = bytearray()
                self.cmds.append(cmd)
                r = self._command(cmd)
                if r:
                    self.feed(r)
            else:
                self._acc.append(c)

    def _command(self, cmd):
        raise NotImplementedError


class ScriptedModem(LinePeer):
    def __init__(self, echo=False):
        LinePeer.__init__(self)
        self.echo = echo
        self.rules = {}  # command line -> bytes, or fn(cmd) -> bytes
        self.prompts = {}  # command line -> (n, reply after exactly n data bytes)

    def _command(self, cmd):
        echo = cmd.encode() + b"\r" if self.echo else b""
        if cmd in self.prompts:
            n, after = self.prompts[cmd]
            return echo + self._prompt(n, lambda d: (d if self.echo else b"") + after)
        r = self.rules.get(cmd)
        if r is None:
            return echo  # silence
        if not isinstance(r, (bytes, bytearray)):
            r = r(cmd)
        return echo + (r or b"")
