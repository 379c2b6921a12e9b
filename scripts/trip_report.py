#!/usr/bin/env python3
"""Trip report from the records a subscriber received: a PNG (speed and RPM over time, the
GNSS track) and a summary (records, losses by sequence number, duplicates, bytes per sample).

    python scripts/trip_report.py RECORDS.jsonl [--out sim-out] [--expected-last-seq N]

RECORDS.jsonl: one decoded record per line, as telelogger.decode.decode_batch gives them
({"seq", "ts", "rpm", "speed", "lat", "lng", ...}) plus "_bytes" (payload bytes / records in it).

Every record not received is undelivered: `lost` (gone) or `still_queued` (on the device's flash,
not at the broker: stuck is not delivered). The summary's `verdict` says which; the exit status is
0 only when every record reached the broker.
"""
import argparse
import json
import os

META = ("seq", "ts", "mono", "boot", "_bytes", "_dup")


def summarize(records, expected_last_seq=None, still_queued=0, first_seq=None):
    """records: list of dicts (duplicates allowed, marked by repeated seq). Returns a summary dict."""
    seqs = [r["seq"] for r in records]
    uniq = sorted(set(seqs))
    last = expected_last_seq if expected_last_seq is not None else (uniq[-1] if uniq else 0)
    first = first_seq if first_seq is not None else 1
    missing = sorted(set(range(first, last + 1)) - set(uniq))
    samples = sum(len([k for k in r if k not in META]) for r in records)
    nbytes = sum(r.get("_bytes", 0) for r in records)
    out_of_order = sum(1 for a, b in zip(seqs, seqs[1:]) if b < a)
    lost = max(0, len(missing) - still_queued)
    stuck = len(missing) - lost
    if not missing and uniq:
        verdict = "OK: every record reached the broker"
    elif not uniq:
        verdict = "FAIL: no record reached the broker"
    elif lost:
        verdict = "FAIL: %d records lost%s" % (lost, ", %d more still queued on the device" % stuck if stuck else "")
    else:
        verdict = "FAIL: %d records still queued on the device, not delivered" % stuck
    return {
        "verdict": verdict,
        "undelivered": len(missing),
        "records_expected": max(0, last - first + 1),
        "records_received": len(uniq),
        "duplicates": len(seqs) - len(uniq),
        "missing_seqs": _ranges(missing),
        "missing": len(missing),
        "still_queued": still_queued,
        "lost": lost,
        "out_of_order": out_of_order,
        "samples": samples,
        "payload_bytes": round(nbytes),
        "bytes_per_sample": round(nbytes / samples, 2) if samples else None,
        "bytes_per_record": round(nbytes / len(records), 1) if records else None,
    }


def _ranges(seqs):
    out = []
    for s in seqs:
        if out and out[-1][1] == s - 1:
            out[-1][1] = s
        else:
            out.append([s, s])
    return ["%d" % a if a == b else "%d-%d" % (a, b) for a, b in out]


def plot(records, png_path, title="Trip"):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    recs = sorted({r["seq"]: r for r in records}.values(), key=lambda r: r["seq"])
    t0 = None
    ts, speed, rpm, lat, lng, gspd = [], [], [], [], [], []
    for r in recs:
        t = r.get("ts")
        if t is None:
            t = r.get("mono")
        if t is None:
            continue
        if t0 is None:
            t0 = t
        x = (t - t0) / 1000.0
        ts.append(x)
        speed.append(r.get("speed"))
        rpm.append(r.get("rpm"))
        gspd.append(r.get("gps_speed"))
        if r.get("lat") is not None and r.get("lng") is not None:
            lat.append(r["lat"])
            lng.append(r["lng"])
    fig, (ax1, ax3) = plt.subplots(1, 2, figsize=(13, 5))
    ax1.set_title("%s: speed and RPM" % title)
    ax1.set_xlabel("time (s, record timestamps)")
    ax1.set_ylabel("speed (km/h)", color="tab:blue")
    _line(ax1, ts, speed, "tab:blue", "OBD speed")
    _line(ax1, ts, gspd, "tab:cyan", "GNSS speed")
    if ax1.get_legend_handles_labels()[0]:
        ax1.legend(loc="upper left")
    ax2 = ax1.twinx()
    ax2.set_ylabel("RPM", color="tab:red")
    _line(ax2, ts, rpm, "tab:red", "RPM")
    ax3.set_title("GNSS track (%d fixes)" % len(lat))
    ax3.set_xlabel("longitude")
    ax3.set_ylabel("latitude")
    if lat:
        ax3.plot(lng, lat, "-", color="tab:green")
        ax3.plot(lng[:1], lat[:1], "o", color="tab:green", label="start")
        ax3.plot(lng[-1:], lat[-1:], "s", color="black", label="end")
        ax3.legend()
        ax3.set_aspect("equal", adjustable="datalim")
        ax3.ticklabel_format(useOffset=False)
        ax3.tick_params(axis="x", labelrotation=30)
    else:
        ax3.text(0.5, 0.5, "no GNSS fixes", ha="center", va="center", transform=ax3.transAxes)
    fig.tight_layout()
    fig.savefig(png_path, dpi=90)
    plt.close(fig)


def _line(ax, xs, ys, color, label):
    pts = [(x, y) for x, y in zip(xs, ys) if y is not None]
    if pts:
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "-", color=color, label=label, linewidth=1.2)


def write_report(records, out_dir, extra=None, expected_last_seq=None, still_queued=0, title="Trip"):
    """PNG + summary.json + summary.txt into out_dir; returns (summary dict, png path)."""
    os.makedirs(out_dir, exist_ok=True)
    s = summarize(records, expected_last_seq, still_queued)
    if extra:
        s.update(extra)
    png = os.path.join(out_dir, "trip.png")
    plot(records, png, title)
    s["png"] = png
    with open(os.path.join(out_dir, "summary.json"), "w") as f:
        json.dump(s, f, indent=1, sort_keys=True)
    with open(os.path.join(out_dir, "summary.txt"), "w") as f:
        f.write("%s\n" % s["verdict"])
        for k in sorted(s):
            if k != "verdict":
                f.write("%-20s %s\n" % (k, s[k]))
    return s, png


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("records")
    ap.add_argument("--out", default="sim-out")
    ap.add_argument("--expected-last-seq", type=int)
    ap.add_argument("--still-queued", type=int, default=0, help="records the device reported still queued")
    a = ap.parse_args(argv)
    with open(a.records) as f:
        recs = [json.loads(line) for line in f if line.strip()]
    s, png = write_report(recs, a.out, expected_last_seq=a.expected_last_seq, still_queued=a.still_queued)
    print(json.dumps(s, indent=1))
    print(s["verdict"])
    return 0 if s["verdict"].startswith("OK") else 1


if __name__ == "__main__":
    raise SystemExit(main())
