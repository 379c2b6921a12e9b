"""Make the elm327-emulator's car follow the replayed GNSS drive (peers/gnss_replay.Drive), so the
vehicle's OBD speed/RPM and the GNSS track describe the same trip in `make sim`.

Runs INSIDE the `elm` process: its command interpreter executes Python lines from stdin, where
`emulator` is the running Elm instance. `install()` replaces the scenario's SPEED and RPM answers
by functions of the drive's time (drive seconds = real seconds since t0 x speedup)."""
import time


def install(emulator, speedup=1.0, t0=None):
    from elm.obd_message import DT, ECU_R_ADDR_E, HD, SZ

    from peers.gnss_replay import Drive

    drive = Drive()
    start = time.time() if t0 is None else t0

    def kmh():
        return max(0.0, drive.speed_kmh_at((time.time() - start) * speedup))

    def rpm(v):
        # idle, else engine speed for a five-gear box (rpm per km/h per gear)
        if v < 1:
            return 780.0
        ratio = 120 if v < 20 else 70 if v < 35 else 48 if v < 55 else 36 if v < 75 else 29
        return max(1100.0, v * ratio)

    def speed_answer(self, cmd, pid, uc_val):
        return HD(ECU_R_ADDR_E) + SZ("03") + DT("41 0D %02X" % min(255, int(round(kmh()))))

    def rpm_answer(self, cmd, pid, uc_val):
        raw = int(rpm(kmh()) * 4)
        return HD(ECU_R_ADDR_E) + SZ("04") + DT("41 0C %02X %02X" % (raw >> 8 & 255, raw & 255))

    scen = emulator.ObdMessage[emulator.scenario]
    for name, fn in (("SPEED", speed_answer), ("RPM", rpm_answer)):
        entry = scen[name]  # the same dict the emulator's sorted table holds: changed in place
        entry.pop("Response", None)
        entry["ResponseFooter"] = fn
    return "elm_drive: SPEED and RPM follow the drive (x%g)" % speedup
