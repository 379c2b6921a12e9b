# UTC sanity (issue 11, telelogger/loop.py set_utc) on both runtimes: a GNSS or network time outside
# 2024..2099 (a GPS week-rollover receiver's 2006 or 1999) is refused and logged once, UTC stays
# unknown and records stay monotonic; a GNSS time far from a network time already known is refused.
import json

from loopfakes import LogLines, FakeGnss, FakeModem, make, stop


Y2006 = 1155600000  # 2006-08-15: a receiver 1024 weeks behind in 2026
Y2025 = 1764000000  # 2025-11-24


class Log(LogLines):
    def refusals(self):
        return [m for lv, m in self.lines if "refused" in m]


class TimeModem(FakeModem):
    """A modem with network time (AT+CCLK): utc_ms() returns `utc` (ms) or None."""

    def __init__(self, utc=None):
        FakeModem.__init__(self)
        self.utc = utc
        self.asked = 0

    async def utc_ms(self):
        self.asked += 1
        return self.utc


def _fix(gnss, clk, epoch):
    f = gnss.fix
    f.epoch = epoch + clk.t // 1000
    f.ms = 0
    f.hour, f.minute, f.second = 12, 0, 0
    f.updates += 1


def _records(store, pub):
    return [json.loads(r) for s, r in store.recs] + [e[1] for tp, p, q in pub.sent if tp.endswith("/data")
                                                    for e in json.loads(p)["e"]]


def test_bounds_are_documented_dates():
    # CONFIG.md: UTC from 2024-01-01 00:00 (accepted) up to 2100-01-01 (refused); GNSS within 10 min of
    # a known network time
    from gnss.fix import days_from_epoch

    lo = days_from_epoch(2024, 1, 1) * 86400000
    hi = days_from_epoch(2100, 1, 1) * 86400000
    t, clk, pub, store, obd = make()
    t.log = Log()
    assert not t.set_utc(lo - 1, True) and t.set_utc(lo, True)
    assert t.set_utc(hi - 1) and not t.set_utc(hi)
    t, clk, pub, store, obd = make()
    t.log = Log()
    assert t.set_utc(Y2025 * 1000)  # network time, then GNSS 10 min off (accepted) and 10 min + 1 ms (not)
    assert t.set_utc(Y2025 * 1000 + 600000, True) and not t.set_utc(Y2025 * 1000 + 600001, True)


async def test_gnss_week_rollover_date_is_refused_once_and_utc_stays_unknown():
    gnss = FakeGnss()
    log = Log()
    t, clk, pub, store, obd = make(gnss=gnss)
    t.log = log
    t.start()
    for _ in range(4):
        _fix(gnss, clk, Y2006)
        await clk.advance(1000)
    await stop(t, clk)
    t.build_record()
    assert t.utc_offset_ms is None and t.utc_ms() is None
    assert len(log.refusals()) == 1, log.lines  # logged once, not per fix
    msg = log.refusals()[0]
    assert "GNSS" in msg and "2024" in msg and "unknown" in msg, msg
    recs = _records(store, pub)
    assert recs and not [r for r in recs if r[1]]  # every record monotonic: no 2006 timestamp


def test_implausible_times_refused_plausible_accepted():
    from gnss.fix import days_from_epoch

    t, clk, pub, store, obd = make()
    t.log = log = Log()
    assert not t.set_utc(days_from_epoch(2024, 1, 1) * 86400000 - 1, True)
    assert not t.set_utc(days_from_epoch(2100, 1, 1) * 86400000, True)
    assert not t.set_utc(0)  # network time from a module that never got NITZ
    assert t.utc_offset_ms is None
    assert len(log.refusals()) == 2  # once per source (GNSS, network)
    assert t.set_utc(Y2025 * 1000, True) and t.utc_ms() == Y2025 * 1000
    assert t.net_offset_ms is None  # a GNSS time is not a network time


def test_gnss_far_from_known_network_time_is_refused():
    t, clk, pub, store, obd = make()
    t.log = log = Log()
    assert t.set_utc(Y2025 * 1000)  # network time first
    clk.t += 5000
    assert not t.set_utc((Y2025 + 5 + 3600) * 1000, True)  # GNSS an hour off
    assert t.utc_ms() == (Y2025 + 5) * 1000  # the network's time stays
    assert len(log.refusals()) == 1 and "3600 s from the network" in log.refusals()[0], log.lines
    assert "as it was" in log.refusals()[0]
    assert t.set_utc((Y2025 + 5 + 2) * 1000, True)  # within 10 min (loop._UTC_AGREE_MS): GNSS refines it
    assert t.utc_ms() == (Y2025 + 7) * 1000


async def test_network_time_checked_then_gnss_against_it():
    gnss = FakeGnss()
    modem = TimeModem(Y2006 * 1000)
    t, clk, pub, store, obd = make(gnss=gnss, modem=modem)
    t.log = log = Log()
    t.start()
    await clk.advance(1500)
    assert modem.asked >= 1 and t.utc_offset_ms is None  # 2006 from the network: refused
    modem.utc = Y2025 * 1000 + clk.t
    await clk.advance(t.signal_ms)
    assert t.net_offset_ms is not None and abs(t.utc_ms() - (Y2025 * 1000 + clk.t)) <= t.signal_ms
    net = t.utc_offset_ms
    _fix(gnss, clk, Y2025 + 7200)  # a GNSS time two hours away from the network's
    await clk.advance(2000)
    await stop(t, clk)
    assert t.utc_offset_ms == net
    assert [m for m in log.refusals() if m.startswith("GNSS time")], log.lines
    assert [m for m in log.refusals() if m.startswith("network time")], log.lines  # the 2006 one
    assert len(log.refusals()) == 2, log.lines
