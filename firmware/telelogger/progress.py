# One line of live progress for the host runner (run_host.py, make sim): imported only when a
# caller asked for progress, never on the device's own path.


def progress(t):
    """One line of live progress (a dict) for run_host.py / sim.py; mem_free: heap bytes free after a
    collection (MicroPython), None on CPython."""
    import gc

    free = getattr(gc, "mem_free", None)
    if free:
        gc.collect()
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
        "voltage": last.get(0x24), "signal": last.get(0x81), "mem_free": free() if free else None,
    }

