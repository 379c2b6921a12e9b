# Obd.coproc_gnss(), the ONE+ co-processor's GNSS read (ATGPS -> "$GNIFO,..."): not resident with the
# shipped default (the modem's GNSS). Obd.__getattr__ binds it when the attribute is read (a
# closure over the Obd: the co-processor's GNSS source, gnss.coproc.CoprocGnss, reads it once and
# keeps it, so this small module stays alive with that source only); the module leaves sys.modules.
from obdii.elm import ElmError, eol


def bind(obd):
    """obd.coproc_gnss: an async callable (timeout_ms=500) -> the raw "$GNIFO,..." line."""

    async def coproc_gnss(timeout_ms=500):
        """ATGPS: the raw "$GNIFO,..." line from the co-processor's GNSS, switched on first
        (gnss_on) after every reset of the co-processor."""
        if not obd.gnss_started:
            await obd.gnss_on()
        link = obd.link
        n = await link.query_raw(b"ATGPS", timeout_ms)
        buf = link.buf
        s = 0
        while s < n:
            e = eol(buf, s, n)
            if buf.find(b"$GNIFO", s, e) == s:
                return bytes(buf[s:e]).decode()
            s = e + 1
        raise ElmError(b"ATGPS", link.text(), "no $GNIFO line in reply")

    return coproc_gnss
