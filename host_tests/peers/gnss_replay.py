"""A simulated drive for the host: NMEA at 1 Hz on a pty, positions for the SIM7600 simulator,
and the speed profile for the OBD side (CPython only).

    drive = Drive()                       # a loop through central Melbourne with traffic-light stops
    drive.position_at(t_s)                # -> (lat, lon, alt_m, speed_kmh, course_deg, utc_epoch_s)
    drive.speed_kmh_at(t_s)               # the same speed an OBD emulator should report
    drive.sentences_at(t_s)               # -> [b"$GNRMC,...*hh\\r\\n", GGA, VTG, GSA] for that second
    sim7600.position_provider = drive.cgps_provider()   # +CGPSINFO follows the drive in real time

CLI (for `make sim` / scripts/run_host.py --gps PATH):
    python host_tests/peers/gnss_replay.py --link /tmp/gps [--speedup N] [--duration S] [--nofix S]
creates a pty, symlinks it at --link and writes one epoch of sentences per simulated second
(time-scaled by --speedup). Like a real UART, output nobody reads is dropped, not buffered.

The NMEA formatting here is written independently of firmware/gnss/nmea.py on purpose: the replay
is a second implementation the parser is tested against.
"""

import argparse
import math
import os
import select
import signal
import sys
import time

EARTH_R = 6371008.8  # m, mean radius
KNOT_KMH = 1.852

# (lat, lon, segment speed limit km/h to reach this point, stop seconds at this point)
# A loop through Melbourne's CBD grid and along the river; stops are traffic lights.
MELBOURNE_LOOP = (
    (-37.81800, 144.95180, 0, 0),  # Flinders St / Spencer St
    (-37.81540, 144.96100, 50, 25),  # Flinders St / Elizabeth St (lights)
    (-37.81660, 144.96690, 50, 0),  # Flinders St / Swanston St
    (-37.81420, 144.96800, 40, 30),  # Swanston St / Collins St (lights)
    (-37.81050, 144.96420, 40, 0),  # Swanston St / Lonsdale St
    (-37.80800, 144.96320, 40, 20),  # Swanston St / La Trobe St (lights)
    (-37.81150, 144.95520, 50, 0),  # La Trobe St / Queen St
    (-37.81300, 144.94950, 50, 35),  # La Trobe St / Spencer St (lights)
    (-37.81800, 144.95180, 60, 15),  # back down Spencer St
)


def checksum(body):
    x = 0
    for c in body.encode("ascii"):
        x ^= c
    return x


def nmea(body):
    return ("$%s*%02X\r\n" % (body, checksum(body))).encode("ascii")


def _haversine(lat1, lon1, lat2, lon2):
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_R * math.asin(math.sqrt(a))


def _bearing(lat1, lon1, lat2, lon2):
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dl = math.radians(lon2 - lon1)
    y = math.sin(dl) * math.cos(p2)
    x = math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(dl)
    return (math.degrees(math.atan2(y, x)) + 360.0) % 360.0


def _dm(v, deg_width, decimals=5):
    v = abs(v)
    d = int(v)
    m = round((v - d) * 60.0, decimals)
    if m >= 60.0:
        d += 1
        m = 0.0
    return "%0*d%0*.*f" % (deg_width, d, decimals + 3, decimals, m)


class Drive:
    """A deterministic drive along `route` (looped), sampled every `step` seconds.

    Kinematics: accelerate at `accel` m/s^2 up to each segment's limit, brake at `decel` to stop at
    traffic lights (dwell there), slow to `turn_kmh` at corners."""

    def __init__(self, route=MELBOURNE_LOOP, start_utc=1714550400.0, accel=1.8, decel=2.5, turn_kmh=20.0, step=0.5, nofix_s=0, talker="GN", base_alt=31.0):
        self.route = route
        self.start_utc = start_utc
        self.accel = accel
        self.decel = decel
        self.turn_kmh = turn_kmh
        self.step = step
        self.nofix_s = nofix_s
        self.talker = talker
        self.base_alt = base_alt
        self._table = []  # (t, lat, lon, dist_m, speed_ms, course)
        self._build()
        self.period_s = self._table[-1][0]

    # --- timeline ------------------------------------------------------------------------------
    def _build(self):
        dt = 0.05
        route = self.route
        t = 0.0
        dist_total = 0.0
        v = 0.0
        course = _bearing(route[0][0], route[0][1], route[1][0], route[1][1])
        table = self._table
        next_sample = 0.0

        def sample(lat, lon):
            nonlocal next_sample
            while t >= next_sample - 1e-9:
                table.append((next_sample, lat, lon, dist_total, v, course))
                next_sample += self.step

        for i in range(1, len(route)):
            lat0, lon0 = route[i - 1][0], route[i - 1][1]
            lat1, lon1, limit_kmh, stop_s = route[i]
            seg = _haversine(lat0, lon0, lat1, lon1)
            course = _bearing(lat0, lon0, lat1, lon1)
            vmax = limit_kmh / 3.6
            v_end = 0.0 if stop_s else min(self.turn_kmh / 3.6, vmax)
            s = 0.0
            while s < seg:
                remaining = seg - s
                brake_dist = (v * v - v_end * v_end) / (2 * self.decel) if v > v_end else 0.0
                if remaining <= brake_dist + v * dt:
                    v = max(v_end, v - self.decel * dt)
                    if v <= 0.0:  # creep the last centimetres so a stop lands on the waypoint
                        v = min(1.0, remaining / dt)
                elif v < vmax:
                    v = min(vmax, v + self.accel * dt)
                ds = min(v * dt, remaining)
                s += ds
                dist_total += ds
                f = s / seg
                lat = lat0 + (lat1 - lat0) * f
                lon = lon0 + (lon1 - lon0) * f
                t += dt
                sample(lat, lon)
            if stop_s:
                v = 0.0
                end = t + stop_s
                while t < end:
                    t += dt
                    sample(lat1, lon1)
        v = 0.0
        sample(route[-1][0], route[-1][1])

    def _state(self, t_s):
        t = t_s % self.period_s if t_s >= 0 else 0.0
        i = int(t / self.step)
        a = self._table[min(i, len(self._table) - 1)]
        b = self._table[min(i + 1, len(self._table) - 1)]
        f = 0.0 if b[0] == a[0] else (t - a[0]) / (b[0] - a[0])
        lat = a[1] + (b[1] - a[1]) * f
        lon = a[2] + (b[2] - a[2]) * f
        dist = a[3] + (b[3] - a[3]) * f
        v = a[4] + (b[4] - a[4]) * f
        course = a[5] if f < 0.5 else b[5]
        return lat, lon, dist, v, course

    # --- public API ----------------------------------------------------------------------------
    def position_at(self, t_s):
        """-> (lat, lon, alt_m, speed_kmh, course_deg, utc_epoch_s) at t_s seconds into the drive."""
        lat, lon, dist, v, course = self._state(t_s)
        alt = self.base_alt + 8.0 * math.sin(dist / 700.0)
        return lat, lon, alt, v * 3.6, course, self.start_utc + t_s

    def speed_kmh_at(self, t_s):
        return self._state(t_s)[3] * 3.6

    def stopped_at(self, t_s):
        return self.speed_kmh_at(t_s) < 0.5

    def sentences_at(self, t_s):
        """One second's NMEA output (RMC, VTG, GGA, GSA) at t_s, u-blox M8 style."""
        utc = self.start_utc + t_s
        tm = time.gmtime(int(utc))
        hhmmss = "%02d%02d%02d.%02d" % (tm.tm_hour, tm.tm_min, tm.tm_sec, int(round((utc % 1) * 100)) % 100)
        date = "%02d%02d%02d" % (tm.tm_mday, tm.tm_mon, tm.tm_year % 100)
        tk = self.talker
        if t_s < self.nofix_s:
            return [
                nmea("%sRMC,%s,V,,,,,,,%s,,,N" % (tk, hhmmss, date)),
                nmea("%sVTG,,,,,,,,,N" % tk),
                nmea("%sGGA,%s,,,,,0,00,99.99,,,,,," % (tk, hhmmss)),
                nmea("%sGSA,A,1,,,,,,,,,,,,,99.99,99.99,99.99" % tk),
            ]
        lat, lon, alt, kmh, course, _utc = self.position_at(t_s)
        la, ns = _dm(lat, 2), "N" if lat >= 0 else "S"
        lo, ew = _dm(lon, 3), "E" if lon >= 0 else "W"
        kn = kmh / KNOT_KMH
        crs = "%.2f" % course if kmh >= 1.0 else ""  # receivers blank the course when stationary
        sats = 9 + int(3 * (1 + math.sin(t_s / 37.0)) / 2)
        hdop = 0.8 + 0.4 * (1 + math.sin(t_s / 23.0)) / 2
        return [
            nmea("%sRMC,%s,A,%s,%s,%s,%s,%.3f,%s,%s,,,A" % (tk, hhmmss, la, ns, lo, ew, kn, crs, date)),
            nmea("%sVTG,%s,T,,M,%.3f,N,%.3f,K,A" % (tk, crs, kn, kmh)),
            nmea("%sGGA,%s,%s,%s,%s,%s,1,%02d,%.2f,%.1f,M,4.7,M,," % (tk, hhmmss, la, ns, lo, ew, sats, hdop, alt)),
            nmea("%sGSA,A,3,02,05,07,09,13,15,18,20,27,30,,,%.2f,%.2f,%.2f" % (tk, hdop * 1.6, hdop, hdop * 1.3)),
        ]

    def cgps_provider(self, clock=time.monotonic, speedup=1.0, t0=None):
        """A position_provider for peers/sim7600.Sim7600: callable() -> dict(lat, lon, alt,
        speed_kn, course, utc) following the drive in (scaled) real time from now."""
        start = clock() if t0 is None else t0

        def provider():
            t = (clock() - start) * speedup
            if t < self.nofix_s:
                return None
            lat, lon, alt, kmh, course, utc = self.position_at(t)
            return dict(lat=lat, lon=lon, alt=alt, speed_kn=kmh / KNOT_KMH, course=course, utc=utc)

        return provider


# --- pty server -------------------------------------------------------------------------------


def open_pty(link=None):
    """-> (master_fd, slave_fd, slave_path); master non-blocking, slave raw; optional symlink."""
    import termios
    import tty

    master, slave = os.openpty()
    tty.setraw(slave, termios.TCSANOW)
    os.set_blocking(master, False)
    path = os.ttyname(slave)
    if link:
        try:
            os.unlink(link)
        except FileNotFoundError:
            pass
        os.symlink(path, link)
    return master, slave, path


def serve(master, drive, speedup=1.0, duration=None, stop=None, clock=time.monotonic, sleep=time.sleep):
    """Write one epoch of sentences per simulated second to `master`. Returns bytes written.
    Bytes nobody reads are dropped (EAGAIN), like a UART with no listener."""
    t0 = clock()
    k = 0
    written = 0
    while duration is None or k <= duration:
        if stop is not None and stop():
            break
        for s in drive.sentences_at(float(k)):
            try:
                written += os.write(master, s)
            except BlockingIOError:
                pass
            except OSError:
                return written
        # drain anything the firmware writes (u-blox configuration) so the pty never blocks it
        try:
            while select.select([master], [], [], 0)[0]:
                if not os.read(master, 4096):
                    break
        except OSError:
            pass
        k += 1
        wait = t0 + k / speedup - clock()
        if wait > 0:
            sleep(wait)
    return written


def main(argv=None):
    ap = argparse.ArgumentParser(description="NMEA drive replay on a pty")
    ap.add_argument("--link", help="symlink to create pointing at the pty (required unless --stdout)")
    ap.add_argument("--speedup", type=float, default=1.0, help="simulated seconds per real second")
    ap.add_argument("--duration", type=float, default=None, help="simulated seconds to run (default: forever)")
    ap.add_argument("--nofix", type=float, default=0, help="seconds of no-fix output first (cold start)")
    ap.add_argument("--talker", default="GN")
    ap.add_argument("--start-utc", type=float, default=None, help="UTC epoch of t=0 (default: now)")
    ap.add_argument("--stdout", action="store_true", help="print the sentences instead of serving a pty")
    args = ap.parse_args(argv)
    drive = Drive(start_utc=time.time() if args.start_utc is None else args.start_utc, nofix_s=args.nofix, talker=args.talker)
    if args.stdout:
        n = int(args.duration if args.duration is not None else drive.period_s)
        for k in range(n + 1):
            for s in drive.sentences_at(float(k)):
                sys.stdout.write(s.decode())
        return 0
    if not args.link:
        ap.error("--link is required (or --stdout)")
    master, slave, path = open_pty(args.link)
    running = [True]
    signal.signal(signal.SIGTERM, lambda *_: running.__setitem__(0, False))
    print("gnss_replay: %s -> %s (loop %.0f s, speedup %g)" % (args.link, path, drive.period_s, args.speedup), flush=True)
    try:
        serve(master, drive, args.speedup, args.duration, stop=lambda: not running[0])
    except KeyboardInterrupt:
        pass
    finally:
        try:
            os.unlink(args.link)
        except OSError:
            pass
        os.close(master)
        os.close(slave)
    return 0


if __name__ == "__main__":
    sys.exit(main())
