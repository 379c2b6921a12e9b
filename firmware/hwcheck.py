# Board bring-up check: one line per item, PASS/FAIL/WARN/SKIP/INFO, with the fix for each failure.
#
# On the device (after deploying, over USB):
#   mpremote connect /dev/ttyUSB0 exec "import hwcheck; hwcheck.main()"
# (scripts/hwcheck.py --port /dev/ttyUSB0 does exactly that.) On the host, scripts/hwcheck.py
# --modem/--obd/--gps builds a board.host.HostBoard and calls the same run().
#
#   items = await run(board, cfg=None, out=print, timeout_ms=10000, reg_timeout_ms=60000,
#                     gnss_timeout_ms=60000, power_on=True, gnss=None, board_known=True)
#   -> [(status, name, detail, fix), ...]   fix is None unless status is FAIL/WARN/SKIP
#
# Items, in order: board file (INFO: unverified pins), board model (co-processor ATI -> devType ->
# model, compared with the deployed board description), modem (present and powered: powered on
# with the power key when it is silent), modem model (model, firmware, MQTT over SSL possible), SIM,
# signal, registration, GNSS fix, OBD protocol, battery. An item whose driver is missing, or that
# depends on one that failed, is SKIP ("not checked"), never PASS.
import asyncio
import gc

from core.compat import DEFAULT_CLOCK, wait_for_ms

PASS = "PASS"
FAIL = "FAIL"
WARN = "WARN"
SKIP = "SKIP"
INFO = "INFO"
BATTERY_OK = (11.5, 15.5)  # volts: below = weak/discharged, above = charging system fault
WEAK_DBM = -105  # at or below: WARN (CSQ <= 4)
NAME_W = 13
HOST_BOARD = "esp32-sim7600"  # on a host without board.json or --board: devtypes empty, no comparison


def _why(e):
    s = str(e)
    if not s or s == "None":
        s = type(e).__name__
    return s


def _mod(name):
    """(module, None) or (None, 'name not available (reason)') when a driver is missing."""
    import sys

    try:
        __import__(name)
        m = sys.modules.get(name)
        if m is None:
            raise ImportError("no module named %s" % name)
        return m, None
    except ImportError as e:
        return None, "%s not available (%s)" % (name, e)


def format_item(status, name, detail, fix=None):
    """The one line printed for an item: `FAIL  SIM           <detail>  fix: <fix>`."""
    line = "%-4s  %s %s" % (status, (name + " " * NAME_W)[:NAME_W], detail)
    if fix and status in (FAIL, WARN, SKIP):
        line += "  fix: " + fix
    return line


def _cfg(cfg, section, key, default=None):
    if not cfg:
        return default
    sec = cfg.get(section)
    if isinstance(sec, dict) and sec.get(key) is not None:
        return sec.get(key)
    return default


class Check:
    def __init__(self, board, cfg=None, out=print, timeout_ms=10000, reg_timeout_ms=60000, gnss_timeout_ms=60000,
                 power_on=True, gnss=None, board_known=True, clock=None, power_timing=None):
        self.board = board
        self.cfg = cfg or {}
        self.out = out
        self.timeout_ms = timeout_ms
        self.reg_timeout_ms = reg_timeout_ms
        self.gnss_timeout_ms = gnss_timeout_ms
        self.power_on = power_on
        self.gnss = gnss
        self.board_known = board_known
        self.clock = clock or getattr(board, "clock", None) or DEFAULT_CLOCK
        self.power_timing = power_timing
        self.items = []
        self.at = None
        self.modem = None  # modem.sim7600.Sim7600 once the modem answers
        self.obd = None  # obdii.obd.Obd once the co-processor answers ATI
        self.sim_ok = None

    def add(self, status, name, detail, fix=None):
        if status not in (FAIL, WARN, SKIP):
            fix = None
        self.items.append((status, name, detail, fix))
        self.out(format_item(status, name, detail, fix))

    # ---- helpers -----------------------------------------------------------------------------
    def _missing_path(self, role):
        """On a host board: the flag to pass when no serial path was given for `role`, else None."""
        paths = getattr(self.board, "paths", None)
        if isinstance(paths, dict) and not paths.get(role):
            return {"modem": "--modem", "coproc": "--obd", "gnss": "--gps"}[role]
        return None

    def _absent(self, role, name):
        """A SKIP line when the board has no `role` (or, on the host, no path for it); True then."""
        b = self.board
        if not b.has(role):
            self.add(SKIP, name, "not checked: board %s has no %s" % (b.name, role), "set '%s' in the board file if one is wired" % role)
            return True
        flag = self._missing_path(role)
        if flag:
            self.add(SKIP, name, "not checked: no %s PATH" % flag)
            return True
        return False

    def _need(self, mod, name, folder):
        """The driver module, or None after a SKIP line saying it is missing."""
        m, err = _mod(mod)
        if m is None:
            self.add(SKIP, name, "not checked: %s" % err, "deploy the whole firmware (%s)" % folder)
        return m

    def _skip_modem(self, name):
        if not self.board.has("modem") or self._missing_path("modem"):
            self.add(SKIP, name, "not checked (no modem)")
        else:
            self.add(SKIP, name, "not checked (modem not answering)")

    # ---- board description ---------------------------------------------------------------------
    def check_board_file(self):
        d = self.board.desc
        bad = [k for k in d if isinstance(d[k], dict) and d[k].get("verified") is False]
        if bad:
            bad.sort()
            self.add(INFO, "board file", "%s (%s): unverified entries: %s (see their notes in boards/%s.json)"
                     % (d.get("model"), d.get("name"), ", ".join(bad), d.get("name")))

    # ---- co-processor --------------------------------------------------------------------------
    async def check_coproc(self):
        name = "board model"
        if self._absent("coproc", name):
            return
        elm = self._need("obdii.elm", name, "obdii/")
        obdm = elm and self._need("obdii.obd", name, "obdii/")
        if elm is None or obdm is None:
            return
        try:
            link = elm.ElmLink(self.board.obd_stream(), self.clock)
        except Exception as e:
            self.add(FAIL, name, "cannot open the co-processor's port: %s" % _why(e),
                     "check the board file's coproc section (UART, rx/tx pins) or the --obd PATH")
            return
        obd = obdm.Obd(link)
        try:
            devtype, letter, text = await wait_for_ms(obd.device_type(), self.timeout_ms)
        except Exception as e:
            self.add(FAIL, name, "co-processor did not answer ATI (%s)" % _why(e),
                     "check the coproc UART pins/baud in the board file; the co-processor is powered from the OBD "
                     "port: plug the device into the car (or a 12 V supply)")
            return
        self.obd = obd
        desc = self.board.desc
        devtypes = desc.get("devtypes") or []
        text = (text or "").strip()
        if not devtype:
            if self.board_known and devtypes:
                self.add(FAIL, name, "ATI %r: not a Freematics co-processor (a generic ELM327?), but the board is %s"
                         % (text, desc["name"]), "redeploy with --board esp32-sim7600 (or your own board file)")
            else:
                self.add(INFO, name, "ATI %r: not a Freematics co-processor (a generic ELM327?)" % text)
            return
        guess = self._board_for(devtype, letter)
        detail = "devType %d (%s) -> %s" % (devtype, text, guess or "unknown model")
        if self.board_known and devtype not in devtypes:
            if guess:
                self.add(FAIL, name, detail + ", but the firmware is set up for %s" % desc["name"],
                         "redeploy with --board %s (scripts/deploy.py --board %s)" % (guess, guess))
            else:
                self.add(WARN, name, detail + ", not listed in board %s" % desc["name"],
                         "add devType %d to the matching boards/*.json 'devtypes'" % devtype)
            return
        if guess is None:
            self.add(WARN, name, detail, "add devType %d to the matching boards/*.json 'devtypes'" % devtype)
            return
        self.add(PASS, name, detail)
        self._apply_devtype(devtype)

    def _board_for(self, devtype, letter):
        """Board name for a devType: the boards/*.json that list it (host checkout or /boards on
        the device), else the co-processor model letter (obdii.elm.COPROC_MODELS)."""
        name = None
        try:
            import sys

            had = "board.desc" in sys.modules
            from board import desc as bdesc

            name = bdesc.board_for_devtype(devtype)
            if not had:
                sys.modules.pop("board.desc", None)
        except Exception:
            name = None
        if name is None and letter:
            name = "oneplus-" + letter.lower()
        return name

    def _apply_devtype(self, devtype):
        """Per-devType pin overrides (e.g. devType 13: modem on RX 32 / TX 33) applied to the board
        before the modem's UART is opened. Works on the board's desc in place of an API for it."""
        b = self.board
        if not b.desc.get("by_devtype") or b.desc.get("devtype") == devtype:
            return
        try:
            from board.desc import apply_devtype

            new = apply_devtype(b.desc, devtype)
        except Exception as e:
            self.add(WARN, "board file", "devType %d overrides not applied: %s" % (devtype, _why(e)), "check by_devtype in the board file")
            return
        opened = getattr(b, "_streams", {})
        changed = [k for k in ("modem", "gnss", "battery") if new.get(k) != b.desc.get(k)]
        if "modem" in changed and "modem" in opened:
            self.add(WARN, "board file", "devType %d moves the modem pins, but its UART is already open" % devtype,
                     "restart the board and run the check again")
            return
        b.desc = new
        if changed:
            self.add(INFO, "board file", "devType %d overrides applied to: %s" % (devtype, ", ".join(changed)))

    # ---- modem ---------------------------------------------------------------------------------
    async def check_modem(self):
        name = "modem"
        if self._absent("modem", name):
            return
        eng = self._need("at.engine", name, "at/")
        sim = eng and self._need("modem.sim7600", name, "modem/")
        if eng is None or sim is None:
            return
        try:
            stream = self.board.modem_stream()
        except Exception as e:
            self.add(FAIL, name, "cannot open the modem's port: %s" % _why(e),
                     "check the board file's modem section (UART, rx/tx pins) or the --modem PATH")
            return
        self.at = at = eng.ATEngine(stream, self.clock)
        at.start()
        modem = sim.Sim7600(at, self.clock, {
            "sim_pin": _cfg(self.cfg, "cellular", "sim_pin") or "",
            "boot_timeout_ms": self.timeout_ms,
            "sim_timeout_ms": self.timeout_ms,
            "cmd_timeout_ms": min(5000, self.timeout_ms),
            "poll_ms": 500,
        })
        pin = None
        if self.power_on:
            try:
                pin = self.board.modem_power_pin()
            except Exception:
                pin = None  # no power key wired: the modem must be on already
        if pin is not None:
            detail = await self._power(pin, at)
            if detail is None:
                return
        else:
            try:
                await modem.wait_ready(self.timeout_ms)
            except Exception as e:
                self.add(FAIL, name, "no answer to AT within %d s (%s)" % (self.timeout_ms // 1000, _why(e)),
                         "power the modem on (power-key pulse; on the ONE+ GPIO27, see boards/*.json modem_power) "
                         "and check this is its AT port")
                return
            detail = "answers AT (powered)"
        self.modem = modem
        self.add(PASS, name, detail)
        for c in ("ATE0", "AT+CMEE=2"):
            try:
                await at.cmd(c, timeout_ms=min(5000, self.timeout_ms))
            except Exception:
                pass  # echo and numeric errors are handled by the engine either way

    async def _power(self, pin, at):
        """Power the modem on with the power key when it does not answer; the PASS detail, or None
        after adding the FAIL line."""
        pw = self._need("modem.power", "modem", "modem/")
        if pw is None:
            return None
        kw = {}
        if self.power_timing:
            kw["timing"] = self.power_timing
        p = pw.ModemPower(pin, at, self.clock, **kw)
        try:
            info = await p.power_on()
        except Exception as e:
            self.add(FAIL, "modem", "no answer to AT: %s" % _why(e),
                     "check the modem is seated and supplied (the ONE+ modem needs the OBD port's 12 V, not only USB) "
                     "and modem_power (pin, active) in the board file")
            return None
        if info.get("already_on"):
            return "answers AT (was already on)"
        return "answers AT (powered on with %d power-key pulse(s) in %d ms)" % (info["pulses"], info["ms"])

    async def check_identity(self):
        name = "modem model"
        if self.modem is None:
            return self._skip_modem(name)
        try:
            model, rev = await self.modem.identify()
        except Exception as e:
            self.add(FAIL, name, "ATI failed (%s)" % _why(e), "check the modem firmware answers ATI / AT+CGMR")
            return
        detail = "%s, firmware %s" % (model or "?", rev or "?")
        if not self.modem.ssl_supported():
            from modem import codes

            self.add(FAIL, name, detail + ": no MQTT over SSL", codes.FIRMWARE_NO_SSL_FIX)
        else:
            self.add(PASS, name, detail + " (MQTT over SSL possible)")

    async def check_sim(self):
        name = "SIM"
        if self.modem is None:
            return self._skip_modem(name)
        try:
            await self.modem.sim_ready()
        except Exception as e:
            self.sim_ok = False
            self.add(FAIL, name, _why(e), self._sim_fix(e))
            return
        self.sim_ok = True
        self.add(PASS, name, "ready")

    def _sim_fix(self, e):
        text = _why(e).lower()
        if "asks for a pin" in text:
            return "set cellular.sim_pin in config.json and redeploy (or remove the PIN in a phone)"
        if "pin refused" in text or "still asks" in text:
            return "correct cellular.sim_pin (each wrong PIN counts: after 3 the SIM needs its PUK)"
        if "puk" in text or "locked" in text:
            return "unlock the SIM with its PUK in a phone, then retry"
        if "not inserted" in text or "failure" in text:
            return "insert the SIM (nano, contacts down) with the device unpowered, then retry"
        return "insert/activate the SIM; set cellular.sim_pin if it asks for a PIN"

    async def check_signal(self):
        name = "signal"
        if self.modem is None:
            return self._skip_modem(name)
        try:
            dbm = await self.modem.signal_dbm()
        except Exception as e:
            self.add(FAIL, name, "AT+CSQ failed (%s)" % _why(e), "check the modem")
            return
        if dbm is None:
            if self.sim_ok is False:
                self.add(SKIP, name, "unknown (AT+CSQ 99) with the SIM not ready", "fix the SIM first")
            else:
                self.add(FAIL, name, "no signal (AT+CSQ 99)", "connect the LTE antenna (MAIN); check coverage for the SIM's network")
        elif dbm <= WEAK_DBM:
            self.add(WARN, name, "%d dBm (weak)" % dbm, "move the antenna / vehicle for better coverage")
        else:
            self.add(PASS, name, "%d dBm" % dbm)

    async def check_registration(self):
        name = "registration"
        if self.modem is None:
            return self._skip_modem(name)
        if self.sim_ok is False:
            self.add(SKIP, name, "not checked (SIM not ready)", "fix the SIM first")
            return
        try:
            await self.modem.wait_registered(self.reg_timeout_ms)
        except Exception as e:
            if "denied" in _why(e):
                fix = ("the network refused this SIM: check it is activated, has a data plan, and may roam on "
                       "this network (try it in a phone)")
            else:
                fix = "check the LTE antenna and coverage, the SIM's operator, and cellular.apn; then retry"
            self.add(FAIL, name, _why(e), fix)
            return
        reg = self.modem.info.get("reg")
        self.add(PASS, name, "registered (CREG/CGREG/CEREG %s)" % (",".join(str(s) for s in reg) if reg else "?"))

    # ---- GNSS ----------------------------------------------------------------------------------
    def gnss_source(self):
        src = self.gnss or _cfg(self.cfg, "gnss", "source") or (self.board.desc.get("gnss") or {}).get("source", "none")
        if src == "uart":
            has_uart = self.board.gnss_uart() if hasattr(self.board, "gnss_uart") else self.board.has("gnss")
            if not has_uart:  # the ONE+ has no free UART for its GNSS: the telelogger falls back too
                src = "modem" if self.board.has("modem") else "coproc"
        return src

    async def check_gnss(self):
        name = "GNSS fix"
        src = self.gnss_source()
        if src == "none":
            self.add(SKIP, name, "not checked (gnss source none)")
            return
        gs = self._need("gnss.sources", name, "gnss/")
        if gs is None:
            return
        t = self.gnss_timeout_ms
        if src == "uart":
            try:
                g = gs.UartGnss(self.board.gps_stream(), clock=self.clock)
            except Exception as e:
                self.add(FAIL, name, "cannot open the GNSS port: %s" % _why(e), "check the gnss section of the board file or --gps PATH")
                return
            g.start()
            try:
                f = await gs.wait_fix(g, t, clock=self.clock)
            finally:
                g.stop()
            what = "the GNSS UART"
        elif src == "modem":
            if self.modem is None:
                return self._skip_modem(name)
            g = gs.ModemGnss(self.at, interval_s=1, timeout_ms=min(5000, self.timeout_ms))
            try:
                await g.start()
            except Exception as e:
                self.add(FAIL, name, "modem GNSS did not start (%s)" % _why(e), "check the modem has GNSS (AT+CGPS)")
                return
            f = await self._poll_fix(g, g.query, t)
            try:
                await g.stop()
            except Exception:
                pass
            what = "modem GNSS"
        elif src == "coproc":
            if self.obd is None:
                self.add(SKIP, name, "not checked (co-processor not answering)", "fix the board model item first")
                return
            obd = self.obd

            async def q():
                return await obd.coproc_gnss()

            g = gs.CoprocGnss(q)
            f = await self._poll_fix(g, g.poll, t)
            what = "co-processor GNSS"
        else:
            self.add(SKIP, name, "not checked (unknown gnss source %r)" % src, "set gnss.source to uart, modem, coproc or none")
            return
        if f is None:
            self.add(FAIL, name, "no fix from %s within %d s" % (what, t // 1000),
                     "GNSS antenna connected and with sky view; a cold start can take minutes (longer timeout)")
        else:
            self.add(PASS, name, "%.5f, %.5f (%s sats) from %s" % (f.lat, f.lon, f.sats if f.sats is not None else "?", what))

    async def _poll_fix(self, g, poll, timeout_ms):
        c = self.clock
        t0 = c.ticks_ms()
        while True:
            try:
                await poll()
            except Exception:
                pass  # no reply this round: try again until the timeout
            f = g.fix()
            if f.has_position():
                return f
            if c.diff(c.ticks_ms(), t0) >= timeout_ms:
                return None
            await c.sleep_ms(1000)

    # ---- OBD -----------------------------------------------------------------------------------
    async def check_obd(self):
        name = "OBD protocol"
        if self.obd is None:
            if self.board.has("coproc") and not self._missing_path("coproc"):
                self.add(SKIP, name, "not checked (co-processor not answering)", "fix the board model item first")
            else:
                self.add(SKIP, name, "not checked (no co-processor)")
            return
        try:
            n = await wait_for_ms(self.obd.init(), self.timeout_ms + 12000)  # SEARCHING... may take 10 s
        except Exception as e:
            self.add(FAIL, name, "no ECU answered (%s)" % _why(e), "ignition on (engine running), and check the OBD-II plug is seated")
            return
        proto = ""
        try:
            lines = await wait_for_ms(self.obd.link.query("ATDP"), self.timeout_ms)
            proto = " ".join(ln for ln in lines if ln and ln != "OK")
        except Exception:
            pass
        self.add(PASS, name, "%s%d PIDs supported" % ((proto + ", ") if proto else "", n))

    async def check_battery(self):
        name = "battery"
        v = None
        src = ""
        try:
            v = self.board.battery_voltage()
            src = "ADC"
        except Exception as e:
            self.add(WARN, name, "battery ADC read failed (%s)" % _why(e), "check battery.pin in the board file")
        if v is None and self.obd is not None:
            try:
                v = await wait_for_ms(self.obd.battery_voltage(), self.timeout_ms)
                src = "ATRV"
            except Exception as e:
                self.add(FAIL, name, "ATRV failed (%s)" % _why(e), "check the co-processor firmware answers ATRV")
                return
        if v is None:
            self.add(SKIP, name, "not checked (no battery ADC and no co-processor)")
            return
        lo, hi = BATTERY_OK
        if v < lo:
            self.add(FAIL, name, "%.1f V (%s)" % (v, src), "below %.1f V: charge the battery or start the engine "
                     "(on USB alone the OBD side is unpowered)" % lo)
        elif v > hi:
            self.add(WARN, name, "%.1f V (%s)" % (v, src), "above %.1f V: check the vehicle's charging system" % hi)
        else:
            self.add(PASS, name, "%.1f V (%s)" % (v, src))

    # ---- all -----------------------------------------------------------------------------------
    async def run(self):
        if self.board_known:
            self.check_board_file()
        steps = (
            ("board model", self.check_coproc),
            ("modem", self.check_modem),
            ("modem model", self.check_identity),
            ("SIM", self.check_sim),
            ("signal", self.check_signal),
            ("registration", self.check_registration),
            ("GNSS fix", self.check_gnss),
            ("OBD protocol", self.check_obd),
            ("battery", self.check_battery),
        )
        for name, step in steps:
            n = len(self.items)
            try:
                await step()
            except Exception as e:  # a bug or MemoryError in one item must not hide the others
                if len(self.items) == n:
                    self.add(FAIL, name, "check crashed: %s: %s" % (type(e).__name__, _why(e)),
                             "report this output; free memory (gc) / redeploy and retry")
            gc.collect()
        return self.items

    def close(self):
        if self.at is not None:
            try:
                self.at.stop()
            except Exception:
                pass

    def summary(self):
        n = len([i for i in self.items if i[0] != INFO])
        bad = len([i for i in self.items if i[0] == FAIL])
        return "hwcheck: %d checks, %d failed" % (n, bad)


async def run(board, cfg=None, out=print, timeout_ms=10000, reg_timeout_ms=60000, gnss_timeout_ms=60000,
              power_on=True, gnss=None, board_known=True, clock=None, power_timing=None, summary=True):
    """Check the board item by item, printing one line each through `out`; returns the list of
    (status, name, detail, fix). power_on: press the modem's power key when it does not answer
    (False on a host, where the power pin is a fake and a USB modem powers itself). gnss: the
    source to check (default: config gnss.source, else the board's). board_known: compare the
    co-processor's devType with the board description (False when the board was only guessed)."""
    c = Check(board, cfg, out, timeout_ms, reg_timeout_ms, gnss_timeout_ms, power_on, gnss, board_known, clock, power_timing)
    try:
        await c.run()
    finally:
        c.close()
    if summary:
        out(c.summary())
    return c.items


def failed(items):
    return [i for i in items if i[0] == FAIL]


def _load_cfg(out):
    """config.json (+ secrets.json) as the telelogger loads them, or None with an INFO line."""
    try:
        from telelogger import config
    except ImportError as e:
        out(format_item(INFO, "config", "not loaded (%s)" % e))
        return None
    try:
        try:
            open("secrets.json").close()
            sec = "secrets.json"
        except OSError:
            sec = None
        return config.load("config.json", sec)
    except Exception as e:
        out(format_item(INFO, "config", "config.json not used (%s): defaults apply" % _why(e)))
        return None


def _arg(argv, name, default=None):
    for i in range(len(argv)):
        if argv[i] == name and i + 1 < len(argv):
            return argv[i + 1]
        if argv[i].startswith(name + "="):
            return argv[i][len(name) + 1:]
    return default


def main(argv=None, board=None, cfg=None, timeout_ms=10000, reg_timeout_ms=60000, gnss_timeout_ms=60000,
         gnss=None, power_on=None, out=print):
    """On the device: `import hwcheck; hwcheck.main()` (the deployed /board.json and config.json).
    On the unix port: `micropython -c "import hwcheck; hwcheck.main()" --modem PATH --obd PATH
    [--board NAME] [--timeout S] [--reg-timeout S] [--gnss-timeout S] [--gnss SRC] [--config F]`.
    Returns the number of failed items."""
    import sys

    if argv is None:
        argv = sys.argv[1:]
    host = sys.platform != "esp32"
    v = _arg(argv, "--timeout")
    if v:
        timeout_ms = int(float(v) * 1000)
    v = _arg(argv, "--reg-timeout")
    if v:
        reg_timeout_ms = int(float(v) * 1000)
    v = _arg(argv, "--gnss-timeout")
    if v:
        gnss_timeout_ms = int(float(v) * 1000)
    gnss = _arg(argv, "--gnss", gnss)
    if gnss is None and host and _arg(argv, "--gps"):
        gnss = "uart"
    if power_on is None:
        power_on = not host  # a host's power pin is a fake
    own = board is None
    known = True
    if own:
        from board import BoardError, load_board, make_board

        name = _arg(argv, "--board")
        try:
            try:
                desc = load_board(name)  # None: the deployed /board.json
            except BoardError:
                if name or not host:
                    raise
                desc = load_board(HOST_BOARD)  # a host without board.json: pins do not matter
                known = False
            board = make_board(desc, argv)
        except Exception as e:
            out(format_item(FAIL, "board file", _why(e), "deploy with scripts/deploy.py --board NAME (writes /board.json)"))
            out("hwcheck: 1 checks, 1 failed")
            return 1
    if cfg is None:
        cfg_path = _arg(argv, "--config")
        if cfg_path:
            from telelogger import config

            cfg = config.load(cfg_path, _arg(argv, "--secrets"))
        elif not host:
            cfg = _load_cfg(out)
    if sys.implementation.name == "micropython":
        asyncio.new_event_loop()  # drop tasks left by an interrupted telelogger (Ctrl-C from mpremote)
    try:
        items = asyncio.run(run(board, cfg, out, timeout_ms, reg_timeout_ms, gnss_timeout_ms, power_on, gnss, known))
    finally:
        if own:
            board.close()
    return len(failed(items))
