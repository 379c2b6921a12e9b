# Boot only: board + validated config -> streams -> drivers -> a Telelogger. telelogger.app imports
# this module for assemble() and drops it again (app.drop_modules): none of it is needed once the
# loop runs, so its bytecode does not stay on the heap. The objects it builds live in their own
# modules (loop, store, drivers, telelogger.modemctl).
from gc import collect

from core.compat import Clock, const
from core.errors import lookup

_WDT_TIMEOUT_MS = const(60000)  # the hardware watchdog; the loop feeds it while every task is alive (status.py)
_FLASH_MARGIN_BLOCKS = const(16)  # kept free on the queue's filesystem (flash_budget): 64 KB on 4 KB blocks


def cmd_counter_path(store_root):
    """The command counter lives beside the queue folder, not in it (/queue -> /queue_cmd_n): `deploy
    --wipe-queue` must not reset it (a reset counter would accept replayed commands). A counter left in
    the queue folder by an older build is moved there once."""
    import os

    path, old = [store_root.rstrip("/") + s for s in "_cmd_n /cmd_n".split()]  # (as data: no names)
    try:
        os.stat(path)
    except OSError:
        try:
            os.rename(old, path)
        except OSError:
            pass
    return path


def flash_budget(cfg, store_root, statvfs=None):
    """queue.max_bytes (+ 2 x debug.at_log_max when the AT log is on: it keeps two files) checked
    against the filesystem the queue is on (os.statvfs; skipped where it is missing): the free space
    plus what the queue and the AT log already hold (in whole blocks), less _FLASH_MARGIN_BLOCKS (16) blocks
    (LittleFS's copy-on-write metadata, the small state files, a segment being rolled). When
    the budget does not fit, the queue is clamped to what does (at least 2 x queue.segment_bytes),
    then the AT log. -> (queue max_bytes, at_log_max, [one warning per clamped key])."""
    import os

    q = cfg.get("queue") or {}
    qmax = q.get("max_bytes", 262144)
    seg = q.get("segment_bytes", 16384)
    d = cfg.get("debug") or {}
    alog = d.get("at_log")
    amax = d.get("at_log_max", 65536) if alog else 0
    statvfs = statvfs or getattr(os, "statvfs", None)
    out = []
    if statvfs is None:
        return qmax, amax, out
    st = None
    for p in (store_root, store_root.rstrip("/").rsplit("/", 1)[0] or "/"):
        try:
            st = statvfs(p)
            break
        except OSError:
            pass
    if st is None:
        return qmax, amax, out
    bs = st[1] or st[0]
    held = 0  # what the files of the queue (a folder) and the AT log hold, in whole blocks
    walk = [store_root] + ([alog, alog + ".1"] if alog else [])
    while walk:
        p = walk.pop()
        try:
            s = os.stat(p)
            if s[0] & 0x4000:
                walk += [p + "/" + n for n in os.listdir(p)]
            else:
                held += -(-s[6] // bs) * bs
        except OSError:
            pass
    usable = st[4] * bs + held - _FLASH_MARGIN_BLOCKS * bs
    if qmax + 2 * amax <= usable:
        return qmax, amax, out
    why = "free %d + held by the queue/AT log %d - margin %d" % (st[4] * bs, held, _FLASH_MARGIN_BLOCKS * bs)
    q2 = max(usable - 2 * amax, 2 * seg)
    if q2 < qmax:
        out.append("queue.max_bytes: %d configured, %d usable on this flash (%s%s): using %d%s"
                   % (qmax, usable - 2 * amax, why, " - 2 x debug.at_log_max" if amax else "", q2,
                      " (the minimum, 2 x queue.segment_bytes)" if q2 > usable - 2 * amax else ""))
        qmax = q2
    if amax and qmax + 2 * amax > usable:
        a2 = (usable - qmax) // 2
        what = "using %d|AT log off".split("|")  # (as data: no names)
        out.append("debug.at_log_max: %d configured, %d usable on this flash beside the queue (%s): %s"
                   % (amax, a2, why, what[0] % a2 if a2 >= 1024 else what[1]))
        amax = a2 if a2 >= 1024 else 0
    return qmax, amax, out


def flat_config(cfg):
    """The transports read secrets at the top level (mqtt_user, certs...): merge them in."""
    out = dict(cfg)
    sec = cfg.get("secrets") or {}
    for k in sec:
        out[k] = sec[k]
    return out


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


def at_log(cfg, clock, max_bytes=None):
    """debug.at_log: the modem conversation in the transcript doctor's format, size-capped
    (max_bytes: debug.at_log_max as flash_budget clamped it; 0: off, no room on the flash)."""
    d = cfg.get("debug") or {}
    path = d.get("at_log")
    if max_bytes is None:
        max_bytes = d.get("at_log_max", 65536)
    if not path or not max_bytes:
        return None
    from at.engine import ATLog, RotatingFile

    try:
        return ATLog(RotatingFile(path, max_bytes), clock)
    except OSError as e:
        print("debug.at_log: cannot write %s (%s): AT log off" % (path, e))
        return None


async def _identify(board, obd):
    """The co-processor's ATI -> devType -> the board file's per-devType pin overrides. A
    co-processor that does not answer leaves the description as it is (logged)."""
    try:
        devtype, model, text = await obd.device_type()
    except MemoryError:  # a memory fault, not a missing part: the boot's handler resets with it
        raise
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
    except MemoryError:
        raise
    except Exception as e:  # a board without the line wired: nothing to drive
        print("obd: co-processor reset line not driven (%s)" % e)


async def assemble(board, cfg, clock=None, store_root="/queue", log=None, reset=None):
    """-> (at, pub, flat, kw): the modem's ATEngine (started; None when nothing uses the modem: WiFi
    transport without modem GNSS), the WiFi publisher or None for the cellular one, the flat config the
    publisher is built from, and the Telelogger's other arguments (store among them: the arguments of
    telelogger.store.Store, (root, max_bytes, segment_bytes), which appasm opens). telelogger.app
    builds the cellular publisher and the Telelogger from them once this module is dropped: the
    publisher's build imports its own rare modules, not beside this code. reset: the loop's reset
    callback (telelogger.loopinit).
    RAM: a gc.collect() between the boot's steps. Without one, what a step leaves behind (a module's
    loading, replies, formatting) is still allocated when the next step's long-lived objects (pins,
    streams, drivers, the interned names) are placed, so those land scattered above it and cut the heap
    into holes too small for the next module's functions: the boot failed at 116K with 24 KB free in
    pieces under 184 bytes. Collected first, the garbage's room is reused from the bottom up."""
    collect()

    clock = clock or Clock()
    flat = flat_config(cfg)
    dev = cfg.get("device_id", "auto")
    if dev == "auto":
        dev = board.device_id()
        flat["device_id"] = dev
    transport = cfg.get("transport", "cellular")
    if transport not in ("cellular", "wifi"):
        raise ValueError("transport %r: expected 'cellular' or 'wifi'" % (transport,))
    obd = None
    if (cfg.get("obd") or {}).get("enabled", True) and board.has("coproc"):
        from obdii.elm import ElmLink
        from obdii.obd import Obd

        collect()
        _release_coproc_reset(board)
        collect()
        try:
            obd = Obd(ElmLink(board.stream("coproc"), clock))
        except MemoryError:
            raise
        except Exception as e:
            print("obd: none (%s)" % e)
    if obd is not None and board.desc.get("by_devtype"):
        await _identify(board, obd)  # before the modem's UART opens: devType 13 moves it
    collect()
    qmax, amax, notes = flash_budget(cfg, store_root)
    for n in notes:
        print(n)
    src, note = gnss_source(board, cfg)
    at = None
    if transport == "cellular" or (src == "modem" and board.has("modem")):
        from at.engine import ATEngine

        at = ATEngine(board.stream("modem"), clock, log=at_log(cfg, clock, amax))
        at.start()
        # the modem's power key: telelogger.appasm's power_on, once this module is dropped
    collect()
    pub = None  # the cellular publisher: telelogger.app builds it
    if at is None or transport != "cellular":  # boot only and WiFi only: a cellular boot does not load its module
        pub = lookup("telelogger.wifiboot", "publisher", board, flat, clock, log)
    # the GNSS source for gnss.source (after gnss_source's fallback), or None
    if note:
        print(note)
    gnss = None
    if src == "uart":
        from gnss.sources import UartGnss

        try:
            gnss = UartGnss(board.stream("gnss"), clock=clock, log=log)
        except MemoryError:
            raise
        except Exception as e:  # host without --gps: run without GNSS
            print("gnss: none (%s)" % e)
    elif src == "coproc" and obd is None:
        print("gnss: none (source coproc, but no co-processor link)")
    elif src == "coproc":
        from gnss.sources import CoprocGnss

        gnss = CoprocGnss(obd, clock=clock, log=log)
    elif src == "modem" and at is None:
        print("gnss: none (source modem, but the board has no modem)")
    elif src == "modem":
        from gnss.sources import ModemGnss

        gnss = ModemGnss(at, clock=clock, log=log)  # its run() turns GNSS on again after RDY / a power cycle
    collect()
    # the queue (telelogger.store.Store) is opened by telelogger.appasm once this module is dropped (its
    # boot half, storeopen, not beside this code): its arguments
    store = (store_root, qmax, (cfg.get("queue") or {}).get("segment_bytes", 16384))
    # the boot counter (loopinit.next_boot) is telelogger.appasm's, once this module is dropped: loopinit is
    # loaded there once for it and the Telelogger's constructor, not beside this code
    wdt = board.wdt_start(_WDT_TIMEOUT_MS) if hasattr(board, "wdt_start") else None
    return at, pub, flat, dict(store=store, obd=obd, gnss=gnss, modem=None, battery=board.battery_voltage,
                               clock=clock, wdt=wdt, board=board, device_id=dev, log=log,
                               cmd_counter_path=cmd_counter_path(store_root), reset=reset,
                               reset_path=store_root + "/last_reset")
