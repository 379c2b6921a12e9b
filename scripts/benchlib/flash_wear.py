"""Flash wear of the store on the ESP32's LittleFS: erases per hour of driving at the default
intervals and the flash lifetime that implies (a `make bench` row).

    from benchlib.flash_wear import bench_flash_wear
    rows, data = bench_flash_wear(quick=False)         # rows: [{"metric","value","target","note"}]

The drive runs under the host MicroPython (LittleFS is a MicroPython vfs): this file is also the
MicroPython script (`micropython flash_wear.py drive SECONDS WINDOW_S STATIC_BYTES`), which mounts
VfsLfs2 (mtime on, as the ESP32 port mounts it) on host_tests/mp/lfsflash.Flash (512 x 4096-byte
blocks, the vfs partition of a 4 MiB ESP32_GENERIC), fills it with the firmware's files (static:
LittleFS never moves them, so they take no wear), and drives telelogger.store.Store as the loop does
at config.DEFAULTS: one record a second (record_ms = the shortest obd.pids interval) holding the
PIDs due (their intervals), the GNSS fix (gnss.interval_ms), battery (10 s) and signal (30 s),
encoded by telelogger.encode; the sender peeks a batch of up to batch.max_records when that many are
pending or batch.max_age_ms has passed and acks it (PUBACK at once). Status messages are published,
not stored. WINDOW_S > 0 models batching in RAM: the store's file is synced (flushed) only once per
window instead of after every append (the records of the last window are what a power cut loses).

Lifetime = free blocks x 100,000 erase cycles / erases per hour / (8 h x 365) years: LittleFS spreads
wear over the blocks it allocates (dynamic wear levelling, metadata pairs relocated every 100 erases,
block_cycles=100 in MicroPython's VfsLfs2), not over blocks held by static files.
"""
import os
import sys

CYCLES = 100000
HOURS_PER_DAY = 8
TARGET_YEARS = 10
BLOCK = 4096
BLOCKS = 512


def lifetime_years(erases_per_hour, free_blocks, cycles=CYCLES, hours_per_day=HOURS_PER_DAY):
    if erases_per_hour <= 0:
        return float("inf")
    return free_blocks * cycles / erases_per_hour / (hours_per_day * 365.0)


# ------------------------------------------------------------------ MicroPython side
def _defaults():
    from telelogger.config import DEFAULTS

    return DEFAULTS


def _samples_at(t_ms, cfg, pid_due):
    """The samples of the record built at t_ms (keys of telelogger/keys.py)."""
    s = []
    for pid, ms in pid_due:
        if t_ms % ms == 0:
            s.append((0x100 | pid, (t_ms // ms * 37 + pid * 11) % 200))
    g = cfg["gnss"].get("interval_ms", 1000)
    if cfg["gnss"]["source"] != "none" and t_ms % g == 0:
        k = t_ms // 1000
        s += [(0x0A, "%.6f" % (48.1 + k * 1e-5)), (0x0B, "%.6f" % (11.5 + k * 1.3e-5)), (0x0C, 520 + k % 7),
              (0x0D, 40 + k % 50), (0x0E, k % 360), (0x0F, 9), (0x12, "0.9")]
    iv = cfg["intervals"]
    if t_ms % iv["battery_ms"] == 0:
        s.append((0x24, "13.8"))
    if t_ms % iv["signal_ms"] == 0:
        s.append((0x81, -71))
    s.sort()
    return s


class _WindowFS:
    """telelogger.store.PosixFS whose sync of a segment file happens at most once per window."""

    def __init__(self, window_ms):
        from telelogger.store import PosixFS

        self.base = PosixFS()
        self.window_ms = window_ms
        self.now = 0
        self.last = 0
        self.held = None
        self.seg = None  # the segment file open for appends (other files sync at once)

    def __getattr__(self, name):
        return getattr(self.base, name)

    def open(self, path, mode):
        f = self.base.open(path, mode)
        if "a" in mode and path.endswith(".seg"):
            self.seg = f
        return f

    def sync(self, f):
        if f is not self.seg:
            self.base.sync(f)
            return
        if self.window_ms and self.now - self.last < self.window_ms:
            self.held = f
            return
        self.base.sync(f)
        self.last = self.now
        self.held = None

    def tick(self, now):
        self.now = now
        if self.held is not None and now - self.last >= self.window_ms:
            try:
                self.base.sync(self.held)
            except (OSError, ValueError):  # closed since (rotation): closing synced it
                pass
            self.last = now
            self.held = None


def drive(seconds, window_s=0, static_bytes=0):
    """Drives the store for `seconds` of driving -> dict of counts (MicroPython only)."""
    import lfsflash
    from telelogger import encode
    from telelogger.store import Store

    cfg = _defaults()
    dev = lfsflash.Flash()
    lfsflash.Flash.mkfs(dev)
    mnt = "/wear"
    dev.mount(mnt, mtime=True)
    static_blocks = 0
    left = static_bytes
    i = 0
    chunk = b"\x5a" * 1024
    while left > 0:  # the firmware's files, in files of at most 16 KB
        n = min(left, 16384)
        with open("%s/fw%d.mpy" % (mnt, i), "wb") as f:
            for _ in range(n // 1024):
                f.write(chunk)
            f.write(chunk[: n % 1024])
        static_blocks += (n + BLOCK - 1) // BLOCK
        left -= n
        i += 1
    e0 = sum(dev.erases)
    erases_before = list(dev.erases)
    fs = _WindowFS(int(window_s * 1000))
    q = cfg["queue"]
    st = Store(mnt + "/q", q["max_bytes"], q["segment_bytes"], fs)
    pids = [(int(k, 16), ms) for k, ms in sorted(cfg["obd"]["pids"].items())]
    rec_ms = min([ms for _, ms in pids] or [1000])
    if cfg["intervals"].get("record_ms"):
        rec_ms = cfg["intervals"]["record_ms"]
    bmax = cfg["batch"]["max_records"]
    bage = cfg["batch"]["max_age_ms"]
    utc0 = 1764547200000
    last_send = 0
    recs = rbytes = acks = 0
    t = 0
    while t < seconds * 1000:
        t += rec_ms
        fs.tick(t)
        # the sender; records not synced yet are not readable by peek: they wait for their window's sync
        n = st.pending()
        if fs.held is None and (n >= bmax or (n and t - last_send >= bage)):
            ents = st.peek(bmax)
            st.ack(ents[-1][0])
            acks += 1
            last_send = t
        r = encode.encode_record(utc0 + t, True, _samples_at(t, cfg, pids))
        st.append(r)
        recs += 1
        rbytes += len(r)
    st.close()
    dev.umount()
    per = [dev.erases[b] - erases_before[b] for b in range(dev.count)]
    erases = sum(dev.erases) - e0
    hot = max(per)
    used = len([e for e in per if e])
    return {"seconds": seconds, "window_s": window_s, "records": recs, "record_bytes": rbytes // max(1, recs),
            "acks": acks, "erases": erases, "progs": sum(dev.progs), "prog_bytes": dev.prog_bytes,
            "hot_block_erases": hot, "blocks_erased": used, "static_blocks": static_blocks,
            "free_blocks": dev.count - static_blocks - 2, "overprog": dev.overprog, "record_ms": rec_ms,
            "batch": bmax, "batch_age_ms": bage}


# ------------------------------------------------------------------ CPython side
if sys.implementation.name != "micropython":  # MicroPython has no os.path
    HERE = os.path.dirname(os.path.abspath(__file__))
    ROOT = os.path.dirname(os.path.dirname(HERE))


def _static_bytes():
    """Bytes of the firmware files on the device's flash (the .mpy tree the tests build)."""
    sys.path.insert(0, os.path.join(ROOT, "host_tests"))
    from mphost import firmware_path

    top = os.environ.get("FLASH_WEAR_FIRMWARE") or os.path.join(ROOT, "build", "firmware")
    if not os.path.isdir(top):
        top = firmware_path()
    total = 0
    for d, _s, fs in os.walk(top):
        for f in fs:
            total += os.path.getsize(os.path.join(d, f))
    return total


def run_drive(seconds, window_s, static_bytes, exe=None, timeout=900):
    import json
    import subprocess

    sys.path.insert(0, os.path.join(ROOT, "host_tests"))
    from mphost import firmware_path, micropython_bin

    exe = exe or micropython_bin()
    env = dict(os.environ)
    env["MICROPYPATH"] = ":".join([firmware_path(), os.path.join(ROOT, "host_tests", "mp"), HERE, ".frozen"])
    cmd = [exe, "-X", "heapsize=4M", os.path.join(HERE, "flash_wear.py"), "drive", str(seconds), str(window_s),
           str(static_bytes)]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    for line in p.stdout.splitlines():
        if line.startswith("WEAR "):
            return json.loads(line[5:])
    raise RuntimeError("flash_wear drive failed (exit %d): %s" % (p.returncode, (p.stdout + p.stderr)[-600:]))


def estimate(seconds=3600, window_s=0, static_bytes=None, exe=None):
    """One drive -> its counts plus erases_per_hour and lifetime_years."""
    if static_bytes is None:
        static_bytes = _static_bytes()
    d = run_drive(seconds, window_s, static_bytes, exe)
    d["erases_per_hour"] = d["erases"] * 3600.0 / seconds
    d["hot_block_erases_per_hour"] = d["hot_block_erases"] * 3600.0 / seconds
    d["lifetime_years"] = lifetime_years(d["erases_per_hour"], d["free_blocks"])
    return d


def bench_flash_wear(quick=False, exe=None):
    """make bench rows: erases/hour and lifetime with the firmware's default sync window
    (queue.sync_ms: records reach flash once per window) and, for comparison, with a sync after every
    record (the write pattern before the window). Returns (rows, data)."""
    fw = os.path.join(ROOT, "firmware")
    if fw not in sys.path:
        sys.path.insert(0, fw)
    window_s = _defaults()["queue"]["sync_ms"] / 1000
    seconds = 600 if quick else 3600
    static = _static_bytes()
    base = estimate(seconds, window_s, static, exe)
    per_record = estimate(seconds, 0, static, exe)

    def r(metric, value, target="", note=""):
        return {"metric": metric, "value": value, "target": target, "note": note}

    note = ("%d records of ~%d B (1 per %d ms), %d batch acks/h; %d free of %d blocks (%d static); hottest block "
            "%.0f erases/h; a power cut loses at most the last %g s of records" % (
                base["records"] * 3600 // seconds, base["record_bytes"], base["record_ms"],
                base["acks"] * 3600 // seconds, base["free_blocks"], BLOCKS, base["static_blocks"],
                base["hot_block_erases_per_hour"], window_s))
    rows = [r("flash erases per hour of driving (defaults: queue.sync_ms %d)" % (window_s * 1000),
              "%.0f" % base["erases_per_hour"], "", note),
            r("flash lifetime at 8 h/day (100k cycles, LittleFS wear spread)", "%.1f years" % base["lifetime_years"],
              ">= %d years" % TARGET_YEARS, ""),
            r("  for comparison: a sync after every record", "%.1f years (%.0f erases/h)" % (
                per_record["lifetime_years"], per_record["erases_per_hour"]), "", "the write pattern before the window")]
    return rows, {"default": base, "per_record": per_record, "window_s": window_s}


def _mp_main(argv):
    import json

    d = drive(int(argv[2]), float(argv[3]), int(argv[4]))
    print("WEAR " + json.dumps(d))


if __name__ == "__main__":
    if sys.implementation.name == "micropython":
        _mp_main(sys.argv)
    else:
        import json

        rows, data = bench_flash_wear(quick="--quick" in sys.argv)
        for x in rows:
            print("%-70s %-28s %-12s %s" % (x["metric"], x["value"], x["target"], x["note"]))
        print(json.dumps(data["default"]))
