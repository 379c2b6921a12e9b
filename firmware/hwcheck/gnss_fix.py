# hwcheck area: a GNSS fix from the configured source (gnss.source, or --gnss): the GNSS UART, the
# modem's GNSS (AT+CGPS) or the co-processor's ($GNIFO).
from hwcheck.common import FAIL, PASS, SKIP, cfg_get, why


class GnssCheck:
    def __init__(self, c):
        self.c = c

    def source(self):
        c = self.c
        b = c.board
        src = c.gnss or cfg_get(c.cfg, "gnss", "source") or (b.desc.get("gnss") or {}).get("source", "none")
        if src == "uart":
            has_uart = b.gnss_uart() if hasattr(b, "gnss_uart") else b.has("gnss")
            if not has_uart:  # the ONE+ has no free UART for its GNSS: the telelogger falls back too
                src = "modem" if b.has("modem") else "coproc"
        return src

    async def run(self):
        c = self.c
        name = c.step = "GNSS fix"
        src = self.source()
        if src == "none":
            c.add(SKIP, name, "not checked (gnss source none)")
            return
        if src not in ("uart", "modem", "coproc"):
            c.add(SKIP, name, "not checked (unknown gnss source %r)" % src, "set gnss.source to uart, modem, coproc or none")
            return
        if src == "modem" and c.modem_area(name, sim=False) is None:
            return
        if src == "coproc" and not c.coproc:
            c.add(SKIP, name, "not checked (co-processor not answering)", "fix the board model item first")
            return
        gs = c.need("gnss.sources", name, "gnss/")
        if gs is None:
            return
        t = c.gnss_timeout_ms
        if src == "uart":
            try:
                g = gs.UartGnss(c.board.gps_stream(), clock=c.clock)
            except Exception as e:
                c.add(FAIL, name, "cannot open the GNSS port: %s" % why(e), "check the gnss section of the board file or --gps PATH")
                return
            g.start()
            try:
                f = await gs.wait_fix(g, t, clock=c.clock)
            finally:
                g.stop()
            what = "the GNSS UART"
        elif src == "modem":
            g = gs.ModemGnss(c.at, interval_s=1, timeout_ms=min(5000, c.timeout_ms))
            try:
                await g.enable()
            except Exception as e:
                c.add(FAIL, name, "modem GNSS did not start (%s)" % why(e), "check the modem has GNSS (AT+CGPS)")
                return
            f = await self.poll_fix(g, g.query, t)
            try:
                await g.off()
            except Exception:
                pass
            what = "modem GNSS"
        else:
            obd = c.obd(name)
            if obd is None:
                return

            async def q():
                return await obd.coproc_gnss()

            g = gs.CoprocGnss(q)
            f = await self.poll_fix(g, g.poll, t)
            what = "co-processor GNSS"
        if f is None:
            c.add(FAIL, name, "no fix from %s within %d s" % (what, t // 1000),
                  "GNSS antenna connected and with sky view; a cold start can take minutes (longer timeout)")
        else:
            c.add(PASS, name, "%.5f, %.5f (%s sats) from %s" % (f.lat, f.lon, f.sats if f.sats is not None else "?", what))

    async def poll_fix(self, g, poll, timeout_ms):
        clock = self.c.clock
        t0 = clock.ticks_ms()
        while True:
            try:
                await poll()
            except Exception:
                pass  # no reply this round: try again until the timeout
            f = g.fix()
            if f.has_position():
                return f
            if clock.diff(clock.ticks_ms(), t0) >= timeout_ms:
                return None
            await clock.sleep_ms(1000)
