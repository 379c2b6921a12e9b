# Assembly: board + config -> streams -> drivers -> Telelogger. main.py (ESP32) and
# scripts/host_main.py (host MicroPython / CPython against serial paths) both call run().
#
#   t = await build(board, cfg, store_root="/queue")   # a Telelogger, not started
#   t, at = await assemble(board, cfg)                 # ... and the modem's ATEngine (or None)
#   await run(board, cfg, duration_ms=None, on_progress=fn, progress_ms=3000)
import asyncio

from core.compat import Clock

WDT_TIMEOUT_MS = 60000  # the loop stops feeding when a task is silent for 300 s (status.py)


def flat_config(cfg):
    """The transports read secrets at the top level (mqtt_user, certs...): merge them in."""
    out = dict(cfg)
    sec = cfg.get("secrets") or {}
    for k in sec:
        out[k] = sec[k]
    return out


def _utc_ms(t):
    """AT+CCLK tuple (y, mo, d, h, mi, s, tz quarter hours, local time) -> UTC ms."""
    from gnss.fix import days_from_epoch

    y, mo, d, h, mi, s, tzq = t[:7]
    return ((days_from_epoch(y, mo, d) * 86400 + h * 3600 + mi * 60 + s) - tzq * 900) * 1000


class ModemCtl:
    """What the loop needs from the modem: signal, network time, power (PWRKEY / AT+CPOF)."""

    def __init__(self, pub, board, clock, log=None):
        self.pub = pub
        self.board = board
        self.clock = clock
        self.log = log
        self._power = None

    async def signal_dbm(self):
        return await self.pub.modem.signal_dbm()

    async def utc_ms(self):
        t = await self.pub.modem.network_time()
        return _utc_ms(t) if t else None

    def _pw(self):
        if self._power is None:
            from modem.power import ModemPower

            self._power = ModemPower(self.board.modem_power_pin(), self.pub.at, self.clock, log=self.log)
        return self._power

    async def power_off(self):
        return await self._pw().power_off()

    async def power_on(self):
        return await self._pw().power_on()


def gnss_source(board, cfg):
    """The configured gnss.source, or its fallback when the board has no GNSS UART (the ONE+
    boards: every UART is taken): the modem's GNSS with the cellular transport, else the
    co-processor's. Returns (source, note or None)."""
    src = (cfg.get("gnss") or {}).get("source", "uart")
    has_uart = board.gnss_uart() if hasattr(board, "gnss_uart") else board.has("gnss")
    if src == "uart" and not has_uart:
        alt = "modem" if cfg.get("transport", "cellular") == "cellular" else "coproc"
        return alt, "gnss: board %s has no GNSS UART: using the %s's GNSS (set gnss.source to say so)" % (
            getattr(board, "name", "?"), "modem" if alt == "modem" else "co-processor")
    return src, None


def make_gnss(board, cfg, obd, at, clock, log=None):
    """The GNSS source for cfg gnss.source (after gnss_source's fallback), or None. `at`: the
    modem's ATEngine (None without one: no modem GNSS)."""
    src, note = gnss_source(board, cfg)
    if note:
        print(note)
    if src == "uart":
        from gnss.sources import UartGnss

        try:
            return UartGnss(board.stream("gnss"), clock=clock, log=log)
        except Exception as e:  # host without --gps: run without GNSS
            print("gnss: none (%s)" % e)
            return None
    if src == "coproc":
        if obd is None:
            print("gnss: none (source coproc, but no co-processor link)")
            return None
        from gnss.sources import CoprocGnss

        return CoprocGnss(obd, clock=clock, log=log)
    if src == "modem":
        if at is None:
            print("gnss: none (source modem, but the board has no modem)")
            return None
        from gnss.sources import ModemGnss

        return ModemGnss(at, clock=clock, log=log)  # its run() turns GNSS on again after RDY / a power cycle
    return None


def wifi_publisher(board, fc, clock, log=None):
    """A net.wifi.WifiPublisher from the flattened config: the board provides the station
    interface (board.wlan(): network.WLAN(STA_IF) on the ESP32, None on the host, whose own
    networking is up); the publisher joins it with secrets wifi_ssid/wifi_password, waiting
    at most wifi_timeout_ms, and says which network it could not join."""
    from net.wifi import WifiPublisher

    b = fc.get("broker") or {}
    tls = bool(b.get("tls"))
    ssid = fc.get("wifi_ssid")
    wlan = board.wlan() if hasattr(board, "wlan") else None
    if wlan is not None and not ssid:
        raise ValueError("transport 'wifi' needs secrets wifi_ssid (and wifi_password)")
    return WifiPublisher(
        fc.get("device_id", "freematics"),
        b.get("host", "localhost"),
        port=b.get("port", 8883 if tls else 1883),
        user=fc.get("mqtt_user") or None,
        password=fc.get("mqtt_pass") or None,
        keepalive=b.get("keepalive", 60),
        ssl=_tls_context(fc.get("certs") or {}, b.get("tls_verify", True), log) if tls else None,
        clean=b.get("clean_session", True),
        wlan=wlan,
        ssid=ssid,
        wifi_password=fc.get("wifi_password"),
        clock=clock,
        log=log,
    )


def _tls_context(certs, verify=True, log=None):
    """ssl.SSLContext for umqtt over WiFi (net.wifi_tls, boot only: dropped after use): the broker
    verified against certs.ca, or refused unless broker.tls_verify is false."""
    try:
        from net.wifi_tls import tls_context

        return tls_context(certs, verify=verify, log=log)
    finally:
        drop_modules("net.wifi_tls")


def at_log(cfg, clock):
    """debug.at_log: the modem conversation in the transcript doctor's format, size-capped."""
    d = cfg.get("debug") or {}
    path = d.get("at_log")
    if not path:
        return None
    from at.engine import ATLog, RotatingFile

    try:
        return ATLog(RotatingFile(path, d.get("at_log_max", 65536)), clock)
    except OSError as e:
        print("debug.at_log: cannot write %s (%s): AT log off" % (path, e))
        return None


async def _identify(board, obd):
    """The co-processor's ATI -> devType -> the board file's per-devType pin overrides. A
    co-processor that does not answer leaves the description as it is (logged)."""
    try:
        devtype, model, text = await obd.device_type()
    except Exception as e:
        print("board: co-processor did not identify itself (%s): pins as in the board file" % e)
        return
    if not devtype:
        print("board: co-processor answered %r: no devType, pins as in the board file" % text)
        return
    changed = board.apply_devtype(devtype)
    if changed:
        print("board: devType %d (model %s): overrides applied to %s" % (devtype, model, ", ".join(changed)))


def _release_coproc_reset(board):
    """The co-processor's reset line (GPIO15 on the ONE+) is driven to 'running' before the link is
    used, as the official begin() sets it HIGH: a floating line can hold the co-processor in reset."""
    if board.section("coproc").get("reset") is None:
        return
    try:
        board.coproc_reset_pin().value(0)
    except Exception as e:  # a board without the line wired: nothing to drive
        print("obd: co-processor reset line not driven (%s)" % e)


async def power_on_modem(board, at, clock, log=None):
    """A cold plug-in or a battery disconnect leaves the module off: press its power key (GPIO27 on
    the ONE+) until it answers AT, as the official firmware does at every start. A module that
    already answers is left alone. Failure is logged, not fatal: records are stored meanwhile and
    the publisher's recovery tries again. modem.power is dropped again (standby imports it when
    it needs it). -> True/False."""
    if not board.has("modem_power"):
        return None
    from modem.power import ModemPower

    try:
        pw = ModemPower(board.modem_power_pin(), at, clock, log=log)
        ok = await pw.ensure_on()
        print("modem: %s" % pw.reason if ok else "modem: power on failed: %s" % pw.reason)
        return ok
    except Exception as e:  # BoardError (key not wired) and the like: keep running, say why
        print("modem: power on failed: %s" % e)
        return False
    finally:
        drop_modules("modem.power")


async def build(board, cfg, clock=None, store_root="/queue", log=None):
    """A Telelogger (not started) for the board and config. See assemble()."""
    return (await assemble(board, cfg, clock, store_root, log))[0]


async def assemble(board, cfg, clock=None, store_root="/queue", log=None):
    """-> (telelogger, at): the Telelogger (not started) and the modem's ATEngine (started;
    None when nothing uses the modem: WiFi transport without modem GNSS). Stop `at` after the
    telelogger."""
    from telelogger.loop import Telelogger, next_boot
    from telelogger.store import Store

    clock = clock or Clock()
    fc = flat_config(cfg)
    dev = cfg.get("device_id", "auto")
    if dev == "auto":
        dev = board.device_id()
        fc["device_id"] = dev
    transport = cfg.get("transport", "cellular")
    if transport not in ("cellular", "wifi"):
        raise ValueError("transport %r: expected 'cellular' or 'wifi'" % (transport,))
    obd = None
    if (cfg.get("obd") or {}).get("enabled", True) and board.has("coproc"):
        from obdii.elm import ElmLink
        from obdii.obd import Obd

        _release_coproc_reset(board)
        try:
            obd = Obd(ElmLink(board.stream("coproc"), clock))
        except Exception as e:
            print("obd: none (%s)" % e)
    if obd is not None and board.desc.get("by_devtype"):
        await _identify(board, obd)  # before the modem's UART opens: devType 13 moves it
    src, _ = gnss_source(board, cfg)
    at = None
    if transport == "cellular" or (src == "modem" and board.has("modem")):
        from at.engine import ATEngine

        at = ATEngine(board.stream("modem"), clock, log=at_log(cfg, clock))
        at.start()
        await power_on_modem(board, at, clock, log)
    modem = None
    if at is not None and transport == "cellular":
        from net.cellular import from_config

        pub = from_config(at, fc, clock, log=log)
        modem = ModemCtl(pub, board, clock, log)
    else:
        pub = wifi_publisher(board, fc, clock, log)
    gnss = make_gnss(board, cfg, obd, at, clock, log)
    q = cfg.get("queue") or {}
    store = Store(store_root, q.get("max_bytes", 262144), q.get("segment_bytes", 16384))
    boot = next_boot(store_root + "/boot")

    class Battery:  # the board's ADC when wired, else the loop asks the co-processor (ATRV)
        def voltage(self):
            return board.battery_voltage()

    wdt = board.wdt_start(WDT_TIMEOUT_MS) if hasattr(board, "wdt_start") else None
    t = Telelogger(cfg, pub, store, obd=obd, gnss=gnss, modem=modem,
                   battery=Battery(), clock=clock, wdt=wdt, board=board, device_id=dev, log=log, boot=boot,
                   cmd_counter_path=store_root + "/cmd_n", reset=_stop_for_reset,
                   reset_path=store_root + "/last_reset")
    return t, at


def _stop_for_reset(reason):
    """The loop gave up on a persistent fault (memory): it has stored what it could and written the
    reason to reset_path; run() sees t.reset_reason, returns, and the caller resets the board
    (device_main: machine.reset(); the host runner exits with its reset code)."""
    return None


def progress(t):
    """One line of live progress (a dict) for run_host.py / sim.py."""
    c = t.counters
    last = t.last
    return {
        "t_ms": t.now(), "state": t.state, "records": c["records"], "last_seq": c["last_seq"],
        "sent": c["sent"], "acked_seq": c["acked_seq"], "queued": t.store.pending(),
        "dropped": getattr(t.store, "dropped", 0), "batches": c["batches"], "bytes": c["last_bytes"],
        "reconnects": c["reconnects"], "send_errors": c["send_errors"], "connect_errors": c["connect_errors"],
        "obd_reads": c["obd_reads"], "obd_errors": c["obd_errors"], "gnss_fixes": c["gnss_fixes"],
        "connected": t.pub.connected(), "utc": t.utc_offset_ms is not None,
        "rpm": last.get(0x10C), "speed": last.get(0x10D), "lat": last.get(0x0A), "lng": last.get(0x0B),
        "voltage": last.get(0x24), "signal": last.get(0x81), "mem_free": _mem_free(),
    }


def _mem_free():
    """Heap bytes free after a collection (MicroPython), None on CPython."""
    import gc

    f = getattr(gc, "mem_free", None)
    if not f:
        return None
    gc.collect()
    return f()


async def run(board, cfg, duration_ms=None, store_root="/queue", on_progress=None, progress_ms=3000, log=None,
              drain_ms=0):
    """Run the telelogger (forever, or for duration_ms, then send what is queued for up to
    drain_ms and disconnect)."""
    t, at = await assemble(board, cfg, store_root=store_root, log=log)
    t.start()
    t0 = t.now()
    try:
        while (duration_ms is None or t.now() - t0 < duration_ms) and t.reset_reason is None:
            step = progress_ms if duration_ms is None else min(progress_ms, duration_ms - (t.now() - t0))
            await t.sleep(max(1, step))
            if on_progress is not None:
                on_progress(progress(t))
        t.stop()
        t.build_record()
        if drain_ms:
            await t.drain(drain_ms)
        if on_progress is not None:
            on_progress(progress(t))
    finally:
        t.stop()
        try:
            await asyncio.wait_for(t.pub.disconnect(), 5)
        except Exception as e:
            print("disconnect: %s" % e)
        if at is not None:
            at.stop()
        close = getattr(t.store, "close", None)
        if close:
            close()
    return t


def _exists(path):
    import os

    try:
        os.stat(path)
        return True
    except OSError:
        return False


def _stamp(paths):
    """What tells a changed file from an unchanged one: (size, mtime) of each path, None if absent."""
    import os

    out = []
    for p in paths:
        try:
            st = os.stat(p)
            out.append((st[6], st[8]))
        except OSError:
            out.append(None)
    return out


def note_error(text, path="/last_error.txt"):
    """Keep the reason the telelogger is not running where an owner finds it (make logs, mpremote cat)."""
    try:
        with open(path, "w") as f:
            f.write(text + "\n")
    except OSError:
        pass


def drop_modules(prefix, keep=()):
    """Forget the modules named prefix* that are not in keep (sys.modules and the parent package's
    attribute), so their bytecode can be collected: for what only boot needs."""
    import sys

    for name in [m for m in sys.modules if m.startswith(prefix) and m not in keep]:
        sys.modules.pop(name, None)
        parent, _, attr = name.rpartition(".")
        pkg = sys.modules.get(parent)
        if pkg is not None and getattr(pkg, attr, None) is not None:
            try:
                delattr(pkg, attr)
            except (AttributeError, TypeError):
                pass


def load_config_waiting(cfg_path="/config.json", sec_path="/secrets.json", poll_ms=5000, sleep_ms=None,
                        error_path="/last_error.txt", max_polls=None):
    """The validated config, waiting for a fix when it is missing or invalid: a configuration error
    never becomes a reset loop. The error is printed once and kept in error_path; the files are
    re-read when their size or time changes (copy a fixed file with mpremote; Ctrl-C gives the
    REPL). The validator is imported for this and dropped again: it is needed at boot only.
    max_polls: give up (return None) after that many polls (tests)."""
    import sys

    if sleep_ms is None:
        import time

        sleep_ms = time.sleep_ms if hasattr(time, "sleep_ms") else (lambda ms: time.sleep(ms / 1000))
    paths = (cfg_path, sec_path)
    polls = 0
    while True:
        stamp = _stamp(paths)
        loaded = [m for m in sys.modules if m.startswith("telelogger.config")]
        try:
            from telelogger import config

            return config.load(cfg_path, sec_path if _exists(sec_path) else None)
        except (OSError, ValueError) as e:  # ConfigError is a ValueError; OSError: a file is missing
            msg = "config: %s: fix %s (and %s) and copy it to the board; waiting (every %d s) for a new file" % (
                e, cfg_path, sec_path, poll_ms // 1000)
            print(msg)
            note_error(msg, error_path)
        finally:
            drop_modules("telelogger.config", loaded)
        while _stamp(paths) == stamp:
            if max_polls is not None and polls >= max_polls:
                return None
            polls += 1
            sleep_ms(poll_ms)


def device_main(restart_delay_ms=10000):
    """ESP32 entry (main.py): /board.json, /config.json (+ /secrets.json), queue in /queue.
    A configuration error waits for a fixed file (load_config_waiting); any other error is printed,
    kept in /last_error.txt, and the board resets after restart_delay_ms."""
    import sys
    import time

    from board import load_board, make_board

    board = None
    try:
        board = make_board(load_board(None))
        cfg = load_config_waiting()
        if not _exists("/queue"):
            import os

            os.mkdir("/queue")
        t = asyncio.run(run(board, cfg, store_root="/queue"))
        if t is not None and t.reset_reason is not None:
            print("telelogger: resetting: %s" % t.reset_reason)
            board.reset()  # the reason is in /queue/last_reset: the next boot's status carries it
    except KeyboardInterrupt:
        raise  # Ctrl-C at the REPL: stop here, no reset
    except Exception as e:
        pe = getattr(sys, "print_exception", None)
        if pe:
            pe(e)
        else:
            print("telelogger stopped: %r" % e)
        note_error("%s: %s" % (type(e).__name__, e))
        if board is None:
            raise  # no board: nothing can reset us; leave the REPL usable
        if hasattr(time, "sleep_ms"):
            time.sleep_ms(restart_delay_ms)
        else:
            time.sleep(restart_delay_ms / 1000)
        board.reset()
