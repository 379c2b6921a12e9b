#!/usr/bin/env python3
"""Trip report from the records a subscriber received: a PNG (speed and RPM over time, the
GNSS track) and a summary (records, losses by sequence number, duplicates, bytes per sample).

    python scripts/trip_report.py RECORDS.jsonl [--out sim-out] [--expected-last-seq N] [--series series.json]

RECORDS.jsonl: one decoded record per line, as telelogger.decode.decode_batch gives them
({"seq", "ts", "rpm", "speed", "lat", "lng", ...}) plus "_bytes" (payload bytes / records in it).

Every record not received is undelivered: `lost` (gone) or `still_queued` (on the device's flash,
not at the broker: stuck is not delivered). The summary's `verdict` says which; the exit status is
0 only when every record reached the broker.
"""
import argparse
import json
import os

META = ("seq", "ts", "mono", "boot", "_bytes", "_dup", "_rx", "_t")


def summarize(records, expected_last_seq=None, still_queued=0, first_seq=None, problems=(), notes=()):
    """records: list of dicts (duplicates allowed, marked by repeated seq). Returns a summary dict.
    problems: what else fails the run (a simulator bug, ...); notes: what an OK verdict adds in brackets."""
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
    if problems:
        verdict = ("FAIL: " if verdict.startswith("OK") else verdict + "; ") + "; ".join(problems)
    elif notes and verdict.startswith("OK"):
        verdict += " (%s)" % "; ".join(notes)
    if not uniq and not last:
        verdict = "FAIL: the firmware stored no records" + verdict[len("FAIL: no record reached the broker"):]
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


def _created(recs, progress, speedup):
    """Run time (s since the firmware started) each record was taken: its timestamp (drive time: the
    GNSS replay runs `speedup` x real time, and the device's clock follows GNSS) placed on the run's clock
    by the progress snapshots (the first one that counts it was taken at or after it)."""
    if not progress or not speedup:
        return None
    seen = []
    for at, stored, _sent, _q, _c in progress:
        if stored:
            seen.append((stored, at))
    if not seen:
        return None
    k = 1000.0 * speedup
    off = None
    for r in recs:
        obs = next((at for n, at in seen if n >= r["seq"]), None)
        if obs is not None and r.get("ts") is not None:
            o = obs - r["ts"] / k
            off = o if off is None else min(off, o)
    if off is None:
        return None
    return [off + r["ts"] / k if r.get("ts") is not None else None for r in recs]


def _shade(ax, series, label=True):
    """The network cuts (shaded) and the injected faults (dotted lines), on a run-time axis."""
    for i, (at, secs) in enumerate(series.get("cuts") or ()):
        ax.axvspan(at, at + secs, color="tab:red", alpha=0.12, lw=0, label="network cut" if label and not i else None)
    for i, (t, _kind) in enumerate(series.get("faults") or ()):
        ax.axvline(t, color="tab:purple", lw=0.8, ls=":", label="injected fault" if label and not i else None)


def plot(records, png_path, title="Trip", series=None, speedup=None):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = series or {}
    progress = series.get("progress") or []
    recs = sorted({r["seq"]: r for r in records}.values(), key=lambda r: r["seq"])
    created = _created(recs, progress, speedup)
    if created is not None:
        xs = created
        xlabel = "run time (s since the firmware started; the drive is replayed %g x faster)" % speedup
    else:
        t0 = next((r.get("ts", r.get("mono")) for r in recs if r.get("ts", r.get("mono")) is not None), None)
        xs = [None if r.get("ts", r.get("mono")) is None else (r.get("ts", r.get("mono")) - t0) / 1000.0 for r in recs]
        xlabel = "drive time (s, from the record timestamps)"
    fig, axes = plt.subplots(2, 2, figsize=(15, 10))
    ax1, ax3 = axes[0]
    axq, axd = axes[1]

    # speed and RPM
    ax1.set_title("%s: vehicle speed and engine RPM" % title)
    ax1.set_xlabel(xlabel)
    ax1.set_ylabel("speed (km/h)")
    _shade(ax1, series)
    _line(ax1, xs, [r.get("speed") for r in recs], "tab:blue", "OBD speed (km/h)")
    _line(ax1, xs, [r.get("gps_speed") for r in recs], "tab:cyan", "GNSS speed (km/h)")
    ax2 = ax1.twinx()
    ax2.set_ylabel("engine speed (RPM)")
    _line(ax2, xs, [r.get("rpm") for r in recs], "tab:red", "RPM (right axis)")
    ys = [r.get("speed") for r in recs] + [r.get("gps_speed") for r in recs]
    top = max([y for y in ys if y is not None] or [1])
    ax1.set_ylim(0, top * 1.35)  # room above the lines for the legend
    rp = [r.get("rpm") for r in recs if r.get("rpm") is not None]
    ax2.set_ylim(0, (max(rp) if rp else 1) * 1.35)
    h1, l1 = ax1.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    if h1 or h2:
        ax1.legend(h1 + h2, l1 + l2, loc="upper center", ncol=3, fontsize=8, framealpha=0.9)

    # the queue: stored, published, received over run time
    axq.set_title("records: taken, queued on the device, published (acked by the broker), received")
    axq.set_xlabel("run time (s since the firmware started)")
    axq.set_ylabel("records")
    _shade(axq, series)
    if progress:
        px = [p[0] for p in progress]
        if created is not None:  # each record at the time it was taken
            ct = sorted(c for c in created if c is not None)
            axq.step(ct, range(1, len(ct) + 1), where="post", color="tab:gray", lw=1.2,
                     label="taken by the device (each record at its timestamp)")
        else:
            _line(axq, px, [p[1] for p in progress], "tab:gray", "stored on the device", step=True)
        _line(axq, px, [p[2] for p in progress], "tab:green", "published (broker PUBACK; the device reports each s)",
              step=True)
        _line(axq, px, [p[3] for p in progress], "tab:orange", "queued on the device (on flash, not yet published)",
              step=True)
    rx = sorted(r["_rx"] for r in recs if r.get("_rx") is not None)
    if rx:
        axq.step(rx, range(1, len(rx) + 1), where="post", color="black", lw=1, ls="--", label="received by the subscriber")
    groups = []  # which fault each dotted line is; those within 0.8 s of each other share a label
    for t, kind in sorted(series.get("faults") or ()):
        if groups and t - groups[-1][0] < 0.8:
            groups[-1][1].append(kind)
        else:
            groups.append((t, [kind]))
    for t, kinds in groups:
        axq.annotate("+".join(kinds), (t, 0.02), xycoords=("data", "axes fraction"), rotation=90, fontsize=7,
                     va="bottom", ha="right", color="tab:purple",
                     bbox={"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.8})
    if axq.get_legend_handles_labels()[0]:
        axq.legend(loc="upper left", fontsize=8, framealpha=0.9)
    else:
        axq.text(0.5, 0.5, "no progress data", ha="center", va="center", transform=axq.transAxes)

    # delivery per record
    axd.set_title("delivery per record: time from being taken to reaching the subscriber")
    axd.set_xlabel("record sequence number")
    axd.set_ylabel("delivery delay (s)")
    if created is not None and rx:
        pts = [(r["seq"], r["_rx"] - c) for r, c in zip(recs, created) if c is not None and r.get("_rx") is not None]
        cuts = series.get("cuts") or ()
        both = [(c, r["_rx"]) for r, c in zip(recs, created) if c is not None and r.get("_rx") is not None]
        # held back: taken before a cut ended and received after it began (its batch waited for the network)
        during = [any(c <= a + n and rx >= a for a, n in cuts) for c, rx in both]
        for flag, color, what in ((False, "tab:green", "taken and sent while online"),
                                  (True, "tab:red", "held back by the network cut (queued, sent after it)")):
            sel = [p for p, d in zip(pts, during) if d == flag]
            if sel:
                axd.bar([p[0] for p in sel], [max(0.0, p[1]) for p in sel], width=0.8, color=color,
                        label="%s: %d records" % (what, len(sel)))
        axd.set_ylim(0, max([p[1] for p in pts] + [1]) * 1.2)
        axd.legend(loc="upper right", fontsize=8)
    else:
        axd.plot([r["seq"] for r in recs], [1] * len(recs), "|", color="tab:green")
        axd.set_ylabel("received")
        axd.set_title("records received, by sequence number")

    # the track, in metres from the start
    fixes = [(r["lat"], r["lng"]) for r in recs if r.get("lat") is not None and r.get("lng") is not None]
    ax3.set_title("GNSS track (%d fixes)" % len(fixes))
    if fixes:
        import math

        lat0, lng0 = fixes[0]
        m_lat = 111320.0
        m_lng = 111320.0 * math.cos(math.radians(lat0))
        east = [(b - lng0) * m_lng for a, b in fixes]
        north = [(a - lat0) * m_lat for a, b in fixes]
        span = max(max(east) - min(east), max(north) - min(north), 1.0)
        unit, div = ("km", 1000.0) if span >= 2000 else ("m", 1.0)
        east = [e / div for e in east]
        north = [n / div for n in north]
        ax3.plot(east, north, "-", color="tab:green", label="track")
        ax3.plot(east[:1], north[:1], "o", color="tab:green", label="start (%.5f, %.5f)" % (lat0, lng0))
        ax3.plot(east[-1:], north[-1:], "s", color="black", label="end")
        ax3.set_xlabel("east of the start (%s)" % unit)
        ax3.set_ylabel("north of the start (%s)" % unit)
        ax3.set_aspect("equal", adjustable="datalim")
        ax3.grid(True, alpha=0.3)
        ax3.legend(loc="best", fontsize=8, framealpha=0.9)
    else:
        ax3.text(0.5, 0.5, "no GNSS fixes", ha="center", va="center", transform=ax3.transAxes)
    for ax in (ax1, axq):
        ax.set_xlim(left=0)
        ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(png_path, dpi=80)
    plt.close(fig)


def _line(ax, xs, ys, color, label, step=False):
    pts = [(x, y) for x, y in zip(xs, ys) if y is not None and x is not None]
    if pts:
        f = ax.step if step else ax.plot
        kw = {"where": "post"} if step else {}
        f([p[0] for p in pts], [p[1] for p in pts], "-", color=color, label=label, linewidth=1.2, **kw)


def write_report(records, out_dir, extra=None, expected_last_seq=None, still_queued=0, title="Trip", series=None,
                 problems=(), notes=()):
    """PNG + summary.json + summary.txt into out_dir; returns (summary dict, png path). series: what the
    run saw over time ({"progress": [[run s, stored, published, queued, connected]], "cuts": [[at s, for s]],
    "faults": [[run s, kind]]}, from sim.py); problems/notes: see summarize()."""
    os.makedirs(out_dir, exist_ok=True)
    s = summarize(records, expected_last_seq, still_queued, problems=problems, notes=notes)
    if extra:
        s.update({k: v for k, v in extra.items() if k != "verdict"})
    png = os.path.join(out_dir, "trip.png")
    plot(records, png, title, series, (extra or {}).get("gnss_speedup"))
    if series:  # to draw the figure again: trip_report.py records.jsonl --series series.json
        with open(os.path.join(out_dir, "series.json"), "w") as f:
            json.dump(dict(series, gnss_speedup=(extra or {}).get("gnss_speedup")), f)
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
    ap.add_argument("--series", help="series.json of a make sim run (progress, cuts, faults, replay speed-up)")
    a = ap.parse_args(argv)
    with open(a.records) as f:
        recs = [json.loads(line) for line in f if line.strip()]
    series = extra = None
    if a.series:
        with open(a.series) as f:
            series = json.load(f)
        extra = {"gnss_speedup": series.pop("gnss_speedup", None)}
    s, png = write_report(recs, a.out, extra, expected_last_seq=a.expected_last_seq, still_queued=a.still_queued,
                          series=series)
    print(json.dumps(s, indent=1))
    print(s["verdict"])
    return 0 if s["verdict"].startswith("OK") else 1


if __name__ == "__main__":
    raise SystemExit(main())
