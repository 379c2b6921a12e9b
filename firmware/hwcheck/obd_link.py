# hwcheck area: the OBD-II protocol (an ECU answers; the protocol and how many PIDs it supports).
from core.compat import wait_for_ms

from hwcheck.common import FAIL, PASS, SKIP, why


class ObdCheck:
    def __init__(self, c):
        self.c = c

    async def run(self):
        c = self.c
        name = c.step = "OBD protocol"
        if not c.coproc:
            if c.board.has("coproc") and not c.missing_path("coproc"):
                c.add(SKIP, name, "not checked (co-processor not answering)", "fix the board model item first")
            else:
                c.add(SKIP, name, "not checked (no co-processor)")
            return
        obd = c.obd(name)
        if obd is None:
            return
        try:
            n = await wait_for_ms(obd.init(), c.timeout_ms + 12000)  # SEARCHING... may take 10 s
        except Exception as e:
            c.add(FAIL, name, "no ECU answered (%s)" % why(e), "ignition on (engine running), and check the OBD-II plug is seated")
            return
        proto = ""
        try:
            lines = await wait_for_ms(obd.link.query("ATDP"), c.timeout_ms)
            proto = " ".join(ln for ln in lines if ln and ln != "OK")
        except Exception:
            pass
        c.add(PASS, name, "%s%d PIDs supported" % ((proto + ", ") if proto else "", n))
