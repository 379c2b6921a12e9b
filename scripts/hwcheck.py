#!/usr/bin/env python3
"""Board bring-up check: one line per item, PASS/FAIL/WARN/SKIP, with the fix for each failure.

    python scripts/hwcheck.py --modem /dev/ttyUSB2 --obd /dev/ttyUSB0 [--gps PATH] [--board oneplus-b]
        [--config config.json] [--timeout 10] [--reg-timeout 60] [--gnss-timeout 60]

Talks to the modem's AT port and the OBD co-processor over serial paths with the firmware's own
drivers (at.engine, modem.sim7600, obdii.obd, gnss.sources) running on the host. A driver that is
not available is reported as "not checked", never as a pass. Items: board model (co-processor
ATI -> devType), modem present & powered, modem model/firmware (and MQTT over SSL support), SIM,
signal, registration, GNSS fix, OBD protocol, battery. Exit status 1 when anything failed.
"""
import argparse
import asyncio
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "firmware"))

PASS, FAIL, WARN, SKIP, INFO = "PASS", "FAIL", "WARN", "SKIP", "INFO"
BATTERY_OK = (11.5, 15.5)  # volts: below = weak/discharged, above = charging system fault


def _import(mod, *names):
    """(objects..., None) or (None..., reason) when the driver module is missing."""
    try:
        m = __import__(mod, None, None, list(names) or ["__name__"])
        return [getattr(m, n) for n in names] + [None]
    except (ImportError, AttributeError) as e:
        return [None] * len(names) + ["%s not available (%s)" % (mod, e)]


class Report:
    def __init__(self, out=None):
        self.out = out or sys.stdout
        self.items = []

    def add(self, status, name, detail, fix=None):
        self.items.append((status, name, detail, fix))
        line = "%-4s  %-13s %s" % (status, name, detail)
        if fix and status in (FAIL, WARN, SKIP):
            line += "\n      fix: " + fix
        print(line, file=self.out, flush=True)

    def failed(self):
        return [i for i in self.items if i[0] == FAIL]


class Checker:
    def __init__(self, a, report):
        self.a = a
        self.r = report
        self.board = None
        self.at = None
        self.modem = None  # modem.sim7600.Sim7600
        self.modem_ok = False
        self.obd = None
        self.obd_ok = False
        self._streams = []

    def ms(self, seconds):
        return int(seconds * 1000)

    # ---- board -------------------------------------------------------------------------
    def load_board(self):
        if not self.a.board:
            return
        (load_board, err) = _import("board", "load_board")
        if err:
            self.r.add(SKIP, "board file", "not checked: " + err)
            return
        try:
            self.board = load_board(self.a.board)
        except Exception as e:
            self.r.add(FAIL, "board file", str(e), "pass --board with a name from boards/ (oneplus-a, oneplus-b, oneplus-h, esp32-sim7600)")
            return
        unverified = [k for k, v in self.board.items() if isinstance(v, dict) and v.get("verified") is False]
        if unverified:
            self.r.add(INFO, "board file", "%s: unverified entries: %s (see their notes in boards/%s.json)" % (self.board["model"], ", ".join(unverified), self.a.board))

    def open(self, path):
        from core.stream import SerialPath

        s = SerialPath(path)
        self._streams.append(s)
        return s

    # ---- co-processor ------------------------------------------------------------------
    async def check_coproc(self):
        if not self.a.obd:
            self.r.add(SKIP, "board model", "not checked: no --obd PATH")
            return
        ElmLink, err = _import("obdii.elm", "ElmLink")
        Obd = None
        if not err:
            Obd, err = _import("obdii.obd", "Obd")
        if err:
            self.r.add(SKIP, "board model", "not checked: " + err)
            return
        try:
            link = ElmLink(self.open(self.a.obd))
        except OSError as e:
            self.r.add(FAIL, "board model", "cannot open %s: %s" % (self.a.obd, e), "check --obd: the co-processor's serial port (115200 8N1)")
            return
        self.obd = Obd(link)
        try:
            devtype, model, text = await asyncio.wait_for(self.obd.device_type(), self.a.timeout)
        except Exception as e:
            self.r.add(FAIL, "board model", "co-processor did not answer ATI on %s (%s)" % (self.a.obd, _why(e)),
                       "check the port and that the co-processor is powered (the OBD socket supplies it)")
            return
        self.obd_ok = True
        if not devtype:
            st = FAIL if self.board and self.board.get("devtypes") else INFO
            self.r.add(st, "board model", "ATI %r: not a Freematics co-processor (a generic ELM327?)" % text,
                       "use --board esp32-sim7600 (or your own board file) for a generic adapter" if st == FAIL else None)
            return
        name = None
        (board_for_devtype, err) = _import("board.desc", "board_for_devtype")
        if not err:
            name = board_for_devtype(devtype)
        detail = "devType %d (%s) -> %s" % (devtype, text.strip(), name or "unknown model %s" % (model or "?"))
        if self.board and name and name != self.board["name"]:
            self.r.add(FAIL, "board model", detail + ", but --board is %s" % self.board["name"], "deploy with --board %s" % name)
        elif name is None:
            self.r.add(WARN, "board model", detail, "add devType %d to the matching boards/*.json" % devtype)
        else:
            self.r.add(PASS, "board model", detail)

    async def check_obd(self):
        if not self.obd_ok:
            self.r.add(SKIP, "OBD protocol", "not checked (co-processor not answering)" if self.a.obd else "not checked: no --obd PATH")
            return
        try:
            n = await asyncio.wait_for(self.obd.init(), self.a.timeout + 12)  # SEARCHING... may take 10 s
        except Exception as e:
            self.r.add(FAIL, "OBD protocol", "no ECU answered (%s)" % _why(e), "ignition on (engine running), and check the OBD-II plug is seated")
            return
        proto = ""
        try:
            lines = await asyncio.wait_for(self.obd.link.query("ATDP"), self.a.timeout)
            proto = " ".join(ln for ln in lines if ln and ln != "OK")
        except Exception:
            pass
        self.r.add(PASS, "OBD protocol", "%s%d PIDs supported" % ((proto + ", ") if proto else "", n))

    async def check_battery(self):
        v = None
        src = ""
        if self.obd_ok:
            try:
                v = await asyncio.wait_for(self.obd.battery_voltage(), self.a.timeout)
                src = "ATRV"
            except Exception as e:
                self.r.add(FAIL, "battery", "ATRV failed (%s)" % _why(e), "check the co-processor firmware answers ATRV")
                return
        if v is None:
            self.r.add(SKIP, "battery", "not checked (no co-processor; the ADC is only readable on the device)")
            return
        lo, hi = BATTERY_OK
        if v < lo:
            self.r.add(FAIL, "battery", "%.1f V (%s)" % (v, src), "battery below %.1f V: charge it or start the engine" % lo)
        elif v > hi:
            self.r.add(WARN, "battery", "%.1f V (%s)" % (v, src), "above %.1f V: check the vehicle's charging system" % hi)
        else:
            self.r.add(PASS, "battery", "%.1f V (%s)" % (v, src))

    # ---- modem -------------------------------------------------------------------------
    async def check_modem(self):
        if not self.a.modem:
            self.r.add(SKIP, "modem", "not checked: no --modem PATH")
            return
        ATEngine, err = _import("at.engine", "ATEngine")
        Sim7600 = None
        if not err:
            Sim7600, err = _import("modem.sim7600", "Sim7600")
        if err:
            self.r.add(SKIP, "modem", "not checked: " + err)
            return
        try:
            stream = self.open(self.a.modem)
        except OSError as e:
            self.r.add(FAIL, "modem", "cannot open %s: %s" % (self.a.modem, e), "check --modem: the modem's AT port (ttyUSB2 on a USB SIM7600)")
            return
        self.at = ATEngine(stream)
        self.at.start()
        self.modem = Sim7600(self.at, config={"sim_pin": self.a.sim_pin, "boot_timeout_ms": self.ms(self.a.timeout)})
        try:
            await self.modem.wait_ready(self.ms(self.a.timeout))
        except Exception as e:
            self.r.add(FAIL, "modem", "no answer to AT on %s within %.0f s (%s)" % (self.a.modem, self.a.timeout, _why(e)),
                       "power the modem on (power-key pulse; on the ONE+ GPIO27, see boards/*.json modem_power) and check this is its AT port")
            return
        self.modem_ok = True
        self.r.add(PASS, "modem", "answers AT on %s (powered)" % self.a.modem)
        try:
            await self.at.cmd("ATE0", timeout_ms=self.ms(self.a.timeout))
            await self.at.cmd("AT+CMEE=2", timeout_ms=self.ms(self.a.timeout))
        except Exception:
            pass

    async def check_identity(self):
        if not self.modem_ok:
            return self._skip_modem("model")
        try:
            model, rev = await self.modem.identify()
        except Exception as e:
            self.r.add(FAIL, "model", "ATI failed (%s)" % _why(e), "check the modem firmware answers ATI")
            return
        detail = "%s, firmware %s" % (model or "?", rev or "?")
        (fix_text, err) = _import("modem.codes", "FIRMWARE_NO_SSL_FIX")
        if not self.modem.ssl_supported():
            self.r.add(FAIL, "model", detail + ": no MQTT over SSL", fix_text or "upgrade the module firmware")
        else:
            self.r.add(PASS, "model", detail + " (MQTT over SSL possible)")

    async def check_sim(self):
        if not self.modem_ok:
            return self._skip_modem("SIM")
        self.modem.cfg["sim_timeout_ms"] = self.ms(self.a.timeout)
        try:
            await self.modem.sim_ready()
        except Exception as e:
            self.r.add(FAIL, "SIM", _why(e), "insert/activate the SIM, set cellular.sim_pin if it asks for a PIN")
            return False
        self.r.add(PASS, "SIM", "ready")
        return True

    async def check_signal(self):
        if not self.modem_ok:
            return self._skip_modem("signal")
        try:
            dbm = await self.modem.signal_dbm()
        except Exception as e:
            self.r.add(FAIL, "signal", "AT+CSQ failed (%s)" % _why(e), "check the modem")
            return
        if dbm is None or dbm == 0:
            self.r.add(FAIL, "signal", "no signal (AT+CSQ 99)", "connect the LTE antenna; check coverage for the SIM's network")
        elif dbm <= -105:
            self.r.add(WARN, "signal", "%d dBm (weak)" % dbm, "move the antenna / vehicle for better coverage")
        else:
            self.r.add(PASS, "signal", "%d dBm" % dbm)

    async def check_registration(self):
        if not self.modem_ok:
            return self._skip_modem("registration")
        try:
            await self.modem.wait_registered(self.ms(self.a.reg_timeout))
        except Exception as e:
            self.r.add(FAIL, "registration", _why(e), "check the SIM is activated for data, the APN, the antenna; try AT+COPS to force the operator")
            return
        reg = self.modem.info.get("reg")
        self.r.add(PASS, "registration", "registered (CREG/CGREG/CEREG %s)" % (reg,))

    async def check_gnss(self):
        src = self.a.gnss
        if src == "auto":
            src = "uart" if self.a.gps else ((self.board or {}).get("gnss") or {}).get("source", "modem")
            if src == "uart" and not self.a.gps:
                src = "modem"
        if src == "none":
            self.r.add(SKIP, "GNSS fix", "not checked (gnss source none)")
            return
        wait_fix, err = _import("gnss.sources", "wait_fix")
        if err:
            self.r.add(SKIP, "GNSS fix", "not checked: " + err)
            return
        timeout = self.ms(self.a.gnss_timeout)
        if src == "uart":
            UartGnss, err = _import("gnss.sources", "UartGnss")
            try:
                g = UartGnss(self.open(self.a.gps))
            except OSError as e:
                self.r.add(FAIL, "GNSS fix", "cannot open %s: %s" % (self.a.gps, e), "check --gps")
                return
            g.start()
            try:
                f = await wait_fix(g, timeout)
            finally:
                g.stop()
            what = "NMEA on %s" % self.a.gps
        elif src == "modem":
            if not self.modem_ok:
                return self._skip_modem("GNSS fix")
            ModemGnss, err = _import("gnss.sources", "ModemGnss")
            g = ModemGnss(self.at, interval_s=1)
            try:
                await g.start()
            except Exception as e:
                self.r.add(FAIL, "GNSS fix", "modem GNSS did not start (%s)" % _why(e), "check the modem supports GNSS (AT+CGPS)")
                return
            t0 = time.monotonic()
            f = None
            while time.monotonic() - t0 < self.a.gnss_timeout:
                try:
                    await g.query()
                except Exception:
                    pass
                if g.fix().has_position():
                    f = g.fix()
                    break
                await asyncio.sleep(1)
            try:
                await g.stop()
            except Exception:
                pass
            what = "modem GNSS"
        else:
            self.r.add(SKIP, "GNSS fix", "not checked (source %s needs the device)" % src)
            return
        if f is None:
            self.r.add(FAIL, "GNSS fix", "no fix from %s within %.0f s" % (what, self.a.gnss_timeout),
                       "GNSS antenna connected and with sky view; a cold start can take minutes (--gnss-timeout)")
        else:
            self.r.add(PASS, "GNSS fix", "%.5f, %.5f (%s sats) from %s" % (f.lat, f.lon, f.sats if f.sats is not None else "?", what))

    def _skip_modem(self, name):
        self.r.add(SKIP, name, "not checked (modem not answering)" if self.a.modem else "not checked: no --modem PATH")

    async def run(self):
        self.load_board()
        await self.check_coproc()
        await self.check_modem()
        await self.check_identity()
        sim = await self.check_sim()
        await self.check_signal()
        if sim is False:
            self.r.add(SKIP, "registration", "not checked (SIM not ready)")
        else:
            await self.check_registration()
        await self.check_gnss()
        await self.check_obd()
        await self.check_battery()

    def close(self):
        if self.at is not None:
            try:
                self.at.stop()
            except Exception:
                pass
        for s in self._streams:
            s.close()


def _why(e):
    s = str(e)
    if not s or s == "None":
        s = type(e).__name__
    return s


def parse(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--modem", help="the modem's AT port (e.g. /dev/ttyUSB2)")
    ap.add_argument("--obd", help="the OBD co-processor's port")
    ap.add_argument("--gps", help="a GNSS receiver's NMEA port")
    ap.add_argument("--board", help="board name (boards/<name>.json) to compare the co-processor's devType with")
    ap.add_argument("--gnss", default="auto", choices=("auto", "uart", "modem", "none"), help="GNSS source to check")
    ap.add_argument("--sim-pin", default=None)
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds for each modem/co-processor answer")
    ap.add_argument("--reg-timeout", type=float, default=60.0, help="seconds to wait for network registration")
    ap.add_argument("--gnss-timeout", type=float, default=60.0, help="seconds to wait for a GNSS fix")
    a = ap.parse_args(argv)
    if not (a.modem or a.obd or a.gps):
        ap.error("give at least one of --modem PATH, --obd PATH, --gps PATH")
    return a


async def amain(a, out=None):
    r = Report(out)
    c = Checker(a, r)
    try:
        await c.run()
    finally:
        c.close()
    bad = r.failed()
    print("%s: %d checks, %d failed" % ("hwcheck", len([i for i in r.items if i[0] != INFO]), len(bad)), file=r.out)
    return r


def main(argv=None, out=None):
    a = parse(argv)
    r = asyncio.run(amain(a, out))
    return 1 if r.failed() else 0


if __name__ == "__main__":
    sys.exit(main())
