# The telelogger loop's boot half (telelogger/loop.py is what runs every sample): building a
# Telelogger from the validated config, the boot counter and the reason the previous boot reset
# itself (starting its tasks: telelogger/loopstart.py, loaded apart: the start comes after the
# publisher's build, and this module would be loaded again for it). Imported for one call and forgotten again (core.errors.forget), so it
# must leave nothing of its own behind: the tasks it starts run functions of resident modules.
import asyncio

from telelogger.sampler import Pid
from telelogger.standby import Standby
from telelogger.tasks import RUN, unload


def next_boot(path):
    """Increments and returns the boot counter kept in the file `path` (0 if unreadable)."""
    n = 0
    try:
        with open(path) as f:
            n = int(f.read().strip() or 0)
    except (OSError, ValueError):
        pass
    n += 1
    try:
        with open(path, "w") as f:
            f.write(str(n))
    except OSError:
        pass
    return n


def init(t, cfg, publisher, store, obd=None, gnss=None, modem=None, battery=None, clock=None, wdt=None, board=None,
         codec=None, commands=None, device_id=None, log=None, boot=0, cmd_counter_path=None, reset=None,
         reset_path=None):
    """Telelogger.__init__ (see its docstring). The loop keeps the few config values it reads, not
    the config: once built, nothing of the config dict needs to stay on the heap."""
    if cfg is None or "secrets" not in cfg:
        # anything but telelogger.config.validate's result is validated here (the loop reads no
        # defaults of its own: one home per fact), without what only the transports need
        from telelogger import config

        cfg = config.validate(cfg or {}, False)
    # where config_set writes (telelogger/cfgcmd.py rebuilds the running config from flash per command)
    t.cfg_path = cfg.get("config_path")
    t.pub = publisher
    t.store = store
    t.obd = obd
    t.gnss = gnss
    t.modem = modem
    t.battery = battery
    if clock is None:
        from core.compat import Clock

        clock = Clock()
    t.clock = clock
    t.wdt = wdt
    t.board = board
    t.log = log
    t.boot = boot  # boot counter: monotonic timestamps are per boot (encode.py)
    if codec is None:
        from telelogger import record as codec  # the device's codec (encode.py: the same, for tools)
    t.codec = codec
    t.device_id = device_id or cfg["device_id"]
    t.commands = commands
    t.cmd_counter_path = cmd_counter_path
    t.reset_cb = reset
    t.reset_path = reset_path
    # the rest in two functions: each function's bytecode is one allocation, and a boot's heap has more
    # room in small pieces than in one large one (this one was 869 bytes)
    _config(t, cfg)
    _state(t, reset_path)


def _config(t, cfg):
    """init's half that reads the validated config."""
    # the config's section and key names this reads, as data (each short literal would be an interned name)
    batch, max_age_ms, intervals, flush_s, hmac_key, window_s, nonces = (
        "batch max_age_ms intervals flush_s hmac_key window_s nonces".split())
    base = cfg["topic_prefix"] + "/" + t.device_id + "/"
    t.t_data = base + "data"
    t.t_status = base + "status"
    t.t_cmd = base + "cmd"  # (replies go to <prefix>/<id>/reply: cmdrun.run)
    t.encoding = cfg["encoding"]
    b = cfg[batch]
    t.batch_max = b["max_records"]
    t.batch_age_ms = b[max_age_ms]
    t.payload_max = b["max_bytes"]
    iv = cfg[intervals]
    t.battery_ms = iv["battery_ms"]
    t.signal_ms = iv["signal_ms"]
    t.status_ms = iv["status_ms"]
    t.gnss_ms = cfg["gnss"]["interval_ms"]
    t.backoff_min_ms = iv["reconnect_min_ms"]
    t.backoff_max_ms = iv["reconnect_max_ms"]
    from net.publisher import jitter_pick

    t.pick = jitter_pick  # backoff jitter source (tests may make it deterministic)
    t.wdt_ms = iv["wdt_feed_ms"]
    o = cfg["obd"]
    # the VIN/DTC checks' interval (telelogger/vehicle.py); None: obd.enabled is false (no OBD tasks)
    t.dtc_ms = o["dtc_interval_s"] * 1000 if o["enabled"] else None
    pids = o["pids"]
    t.pids = [Pid(int(h, 16), pids[h]) for h in sorted(pids)]
    rec = iv["record_ms"]
    if rec is None:  # config: the shortest PID interval, 1000 without PIDs
        rec = min([p.interval_ms for p in t.pids]) if t.pids else 1000
    t.record_ms = rec
    sb = cfg["standby"]
    t.flush_ms = sb[flush_s] * 1000
    t.standby = Standby(sb, 0)
    t.sync_ms = cfg["queue"]["sync_ms"]  # records reach flash once per window (flash wear)
    c = cfg["commands"]
    # what the first command needs (cmdrun.command_handler): the key, and the commands section; the key
    # also signs OTA (telelogger/ota.py)
    t.cmd_cfg = (cfg["secrets"][hmac_key], c["enabled"], c[window_s], c[nonces])
    # OTA chunks (telelogger/ota.py) arrive on <prefix>/<id>/ota, subscribed only when commands could run
    t.t_ota = base + "ota" if c["enabled"] and cfg["secrets"][hmac_key] else None


def _state(t, reset_path):
    """init's half that sets the loop's state."""
    t._mono = 0
    t._last_ticks = t.clock.ticks_ms()
    t.state = RUN
    t.utc_offset_ms = None  # utc_ms - mono_ms, once GNSS or network time is known (loop.set_utc)
    t.net_offset_ms = None  # the same from the network's time alone (GNSS is checked against it)
    t.utc_refused = 0  # sources whose time was refused already (1 GNSS, 2 network): logged once each
    t.pending = {}  # key -> value for the record being built
    t.unsaved = []  # encoded records not on flash yet (sync window, failed write), oldest first
    t._synced_ms = 0
    t.last = {}  # latest value per key, for status/progress
    t.last_send = 0
    t.flush_req = False
    t.reboot_req = False
    t.net_allowed = True
    t.cmdq = []  # command messages not answered yet (at most 4)
    t.cmd_run = None  # the task answering them (Telelogger.cmd_task), while there are any
    t.lock = asyncio.Lock()
    t.rare = asyncio.Lock()  # one heavy job at a time (telelogger/tasks.py turn)
    t.beats = {}
    t.tasks = []
    t.otaq = []  # chunk messages not staged yet (at most loop.OTAQ_MAX)
    t.ota_run = None  # the task staging them (Telelogger.ota_task), while there are any
    t.ota_root = getattr(t.board, "ota_root", "/")  # the filesystem root of the OTA files (host runs: a folder)
    ota_info(t)
    t.last_reset = None  # why the previous boot reset itself: the reason a memory-fault reset left in reset_path
    if reset_path:
        try:
            with open(reset_path) as f:
                t.last_reset = f.read().strip() or None
            import os

            os.remove(reset_path)  # read once
        except OSError:
            pass
    t.reset_reason = None  # set when this run gave up (memory faults): run() returns
    # tasks.fault's memory: the loop ms of recent memory faults, and the task names whose fault was
    # logged already (one attribute: the instance's attribute table stays in a smaller size)
    t._mem = ([], [])
    t.counters = {
        "records": 0, "samples": 0, "obd_reads": 0, "obd_errors": 0, "obd_inits": 0, "gnss_fixes": 0,
        "batches": 0, "sent": 0, "send_errors": 0, "connects": 0, "connect_errors": 0, "reconnects": 0,
        "acked_seq": None, "last_seq": None, "last_bytes": 0, "standby": 0,
        "cmds": 0, "status": 0, "wdt_feeds": 0, "store_errors": 0, "unsaved_dropped": 0, "mem_errors": 0,
        "cmds_unanswered": 0, "ota_dropped": 0,
    }  # (standby_io adds "wakes" and "heartbeats" at the first of each)


def ota_info(t):
    """Sets t.ota_info, otaboot.info() of this boot's build ({ver, slot, trial, failed}; None on a tree
    without otaboot or a flash it cannot read), for the status, and t.ota_trial_ms: while the build is
    on trial, the loop ms by which it must be healthy (statusmsg.tick resets it then), else None.
    otaboot is imported for this and dropped (status.py does the same after mark_healthy)."""
    t.ota_trial_ms = None
    try:
        from telelogger import otaboot

        t.ota_info = i = otaboot.info(getattr(t, "ota_root", "/"))
        if i["trial"]:
            t.ota_trial_ms = otaboot.TRIAL_S * 1000
    except Exception:
        t.ota_info = None
    finally:
        unload("otaboot")
