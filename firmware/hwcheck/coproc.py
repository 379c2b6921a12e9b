# hwcheck area: the board file and the board model (the co-processor's ATI -> devType -> model),
# with the per-devType pin overrides applied before the modem's UART is opened.
from core.compat import wait_for_ms

from hwcheck.common import FAIL, INFO, PASS, WARN, why


class CoprocCheck:
    def __init__(self, c):
        self.c = c

    async def run(self):
        if self.c.board_known:
            self.board_file()
        await self.board_model()

    def board_file(self):
        c = self.c
        c.step = "board file"
        d = c.board.desc
        bad = [k for k in d if isinstance(d[k], dict) and d[k].get("verified") is False]
        if bad:
            bad.sort()
            c.add(INFO, "board file", "%s (%s): unverified entries: %s (see their notes in boards/%s.json)"
                  % (d.get("model"), d.get("name"), ", ".join(bad), d.get("name")))

    async def board_model(self):
        c = self.c
        name = c.step = "board model"
        if c.absent("coproc", name):
            return
        try:
            obd = c.obd(name)
        except Exception as e:
            c.add(FAIL, name, "cannot open the co-processor's port: %s" % why(e),
                  "check the board file's coproc section (UART, rx/tx pins) or the --obd PATH")
            return
        if obd is None:
            return
        try:
            devtype, letter, text = await wait_for_ms(obd.device_type(), c.timeout_ms)
        except Exception as e:
            c.add(FAIL, name, "co-processor did not answer ATI (%s)" % why(e),
                  "check the coproc UART pins/baud in the board file; the co-processor is powered from the OBD "
                  "port: plug the device into the car (or a 12 V supply)")
            return
        c.coproc = True
        desc = c.board.desc
        devtypes = desc.get("devtypes") or []
        text = (text or "").strip()
        if not devtype:
            if c.board_known and devtypes:
                c.add(FAIL, name, "ATI %r: not a Freematics co-processor (a generic ELM327?), but the board is %s"
                      % (text, desc["name"]), "redeploy with --board esp32-sim7600 (or your own board file)")
            else:
                c.add(INFO, name, "ATI %r: not a Freematics co-processor (a generic ELM327?)" % text)
            return
        guess = self.board_for(devtype, letter)
        detail = "devType %d (%s) -> %s" % (devtype, text, guess or "unknown model")
        if c.board_known and devtype not in devtypes:
            if guess:
                c.add(FAIL, name, detail + ", but the firmware is set up for %s" % desc["name"],
                      "redeploy with --board %s (scripts/deploy.py --board %s)" % (guess, guess))
            else:
                c.add(WARN, name, detail + ", not listed in board %s" % desc["name"],
                      "add devType %d to the matching boards/*.json 'devtypes'" % devtype)
            return
        if guess is None:
            c.add(WARN, name, detail, "add devType %d to the matching boards/*.json 'devtypes'" % devtype)
            return
        c.add(PASS, name, detail)
        self.apply_devtype(devtype)

    def board_for(self, devtype, letter):
        """Board name for a devType: the boards/*.json that list it (host checkout or /boards on
        the device), else the co-processor model letter (obdii.adapter.COPROC_MODELS, bytes)."""
        try:
            from board import desc as bdesc

            name = bdesc.board_for_devtype(devtype)
        except Exception:
            name = None
        if name is None and letter:
            name = "oneplus-" + letter.lower()
        return name

    def apply_devtype(self, devtype):
        """Per-devType pin overrides (e.g. devType 13: modem on RX 32 / TX 33) applied to the board
        before the modem's UART is opened."""
        c = self.c
        c.step = "board file"
        try:
            changed = c.board.apply_devtype(devtype)
        except Exception as e:
            c.add(WARN, "board file", "devType %d overrides not applied: %s" % (devtype, why(e)),
                  "restart the board and run the check again (check by_devtype in the board file)")
            return
        if changed:
            c.add(INFO, "board file", "devType %d overrides applied to: %s" % (devtype, ", ".join(changed)))
