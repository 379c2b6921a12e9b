# A GNSS module's NMEA on a UART (or a pty on the host): the reader task feeds gnss.nmea.NMEAParser.
import asyncio

from core.compat import sleep_ms
from gnss.fix import GnssSource
from gnss.nmea import NMEAParser


class UartGnss(GnssSource):
    """Reads NMEA from a stream (core.stream interface: non-blocking readinto). The receiver is
    on by itself (power is the board's: board.gnss_power), so run() only reads."""

    def __init__(self, stream, parser=None, fix=None, jump_filter=True, poll_ms=20, chunk=128, clock=None, log=None):
        if parser is not None:
            fix = parser.fix
        GnssSource.__init__(self, fix, jump_filter, clock, log)
        self.parser = parser if parser is not None else NMEAParser(self._fix)
        self.stream = stream
        self.poll_ms = poll_ms
        self.buf = bytearray(chunk)
        self.bytes_in = 0
        self.last_rx_ms = None  # ticks of the last byte received
        self.error = None  # the exception that ended run() (a closed or broken stream)

    def poll(self):
        """Read and parse whatever is ready now; returns bytes read (0 if none)."""
        n = self.stream.readinto(self.buf)
        if n:
            self.bytes_in += n
            self.last_rx_ms = self.clock.ticks_ms()
            self.parser.feed(self.buf, n)
        return n or 0

    async def run(self):
        buf_len = len(self.buf)
        try:
            while True:
                n = self.poll()
                if n < buf_len:  # drained: let other tasks run
                    await sleep_ms(self.poll_ms)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # a closed/broken stream: keep the reason, end the task
            self.error = e
            self._error("GNSS stream", e)
            raise

    def silent_ms(self):
        """ms since the last byte (None if nothing was ever received): a dead-module check."""
        if self.last_rx_ms is None:
            return None
        return self.clock.since(self.last_rx_ms)
