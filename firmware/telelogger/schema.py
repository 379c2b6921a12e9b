# The telelogger's configuration as data: defaults and the schema every key is checked against
# (telelogger/CONFIG.md). Read only while validating (telelogger.configcheck: at boot and for a
# remote config_set) and for the limits of remote set_interval (telelogger.cmdhandlers); none of
# them keeps this module loaded.

# The tables are built by functions called once and deleted: a module's own code is one block of bytecode,
# and these literals in it made a 790-byte block that a remote config_set (this module imported on a busy,
# fragmented heap) could not find (measured: "config_set failed: memory allocation failed, allocating 790
# bytes" at 144K on the 32-bit interpreter). Each function's code is its own, smaller block (361 and 243
# bytes), freed after.


def _defaults():
    return {
        "device_id": "auto",
        "transport": "cellular",
        "encoding": "compact",
        "topic_prefix": "freematics",
        "broker": {"host": "", "port": 8883, "tls": True, "tls_verify": True, "keepalive": 60, "clean_session": True},
        "cellular": {"apn": "", "sim_pin": "", "ssl_ctx": 0},
        "obd": {
            "enabled": True,
            # hex PID -> interval ms. Tiers of the official firmware (1 s / 3 s / 6 s) plus slow extras.
            "pids": {
                "0D": 1000, "0C": 1000, "11": 1000, "04": 1000,  # speed, rpm, throttle, load
                "0A": 3000, "0E": 3000,  # fuel pressure, timing advance
                "05": 6000, "0F": 6000,  # coolant, intake air temperature
                "10": 5000,  # MAF
                "2F": 60000,  # fuel level
                "46": 60000,  # ambient air temperature
                "33": 60000,  # barometric pressure
                "31": 300000,  # distance since codes cleared
            },
            "dtc_interval_s": 600,  # stored + pending DTCs read at start and this often (telelogger/vehicle.py)
        },
        "gnss": {"source": "uart", "interval_ms": 1000},
        "batch": {"max_records": 20, "max_age_ms": 10000, "max_bytes": 8192},
        "queue": {"max_bytes": 262144, "segment_bytes": 16384, "sync_ms": 5000},
        "intervals": {
            "battery_ms": 10000, "signal_ms": 30000, "status_ms": 300000,
            "record_ms": None,  # None: the shortest obd.pids interval (1000 without PIDs), as the loop does
            "reconnect_min_ms": 1000, "reconnect_max_ms": 60000, "wdt_feed_ms": 1000,
        },
        "standby": {"voltage_off": 11.8, "voltage_wake": 13.6, "stationary_s": 600, "heartbeat_s": 900, "flush_s": 30},
        "commands": {"enabled": True, "window_s": 300, "nonces": 32},
        # the modem conversation in the "=== SENT@ms ===" format that scripts/at_doctor.py reads ("" = off);
        # at most at_log_max bytes, then the file is moved to <name>.1 and started again
        "debug": {"at_log": "", "at_log_max": 65536},
    }


DEFAULTS = _defaults()

SECRETS_DEFAULTS = {
    "apn_user": "",
    "apn_pass": "",
    "mqtt_user": "",
    "mqtt_pass": "",
    "hmac_key": "",
    "wifi_ssid": "",
    "wifi_password": "",
    "certs": {"ca": "", "cert": "", "key": ""},
}

# Schema as data: dotted key -> spec. ("int", lo, hi) / ("float", lo, hi) (None = unbounded;
# ("int", lo, hi, True) also accepts null = derived by the loop),
# ("bool",), ("str", minlen, maxlen, allowed-chars or None or AT), ("enum", choices), ("pids",).
# AT: any characters but `"` and control characters (the value goes into a quoted AT command
# argument, where `"` ends it and CR/LF start another command).
AT = "AT"
# The version of this schema: an OTA bundle's manifest carries it ("schema"; scripts/ota_bundle.py
# reads it from this source) and a device refuses a bundle whose min_schema is above it (FORMAT.md
# "OTA updates"). Raise it when a key is added, removed or changes meaning.
SCHEMA_VERSION = 1
_ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
_HOST_CHARS = _ID_CHARS + "."


def _schema():
    return {
        "device_id": ("str", 1, 32, _ID_CHARS),
        "transport": ("enum", ("cellular", "wifi")),
        "encoding": ("enum", ("compact", "json")),
        "topic_prefix": ("str", 1, 64, _ID_CHARS + "/"),
        "broker.host": ("str", 0, 128, _HOST_CHARS),
        "broker.port": ("int", 1, 65535),
        "broker.tls": ("bool",),
        "broker.tls_verify": ("bool",),
        "broker.keepalive": ("int", 10, 64800),
        "broker.clean_session": ("bool",),
        "cellular.apn": ("str", 0, 62, AT),
        "cellular.sim_pin": ("str", 0, 8, "0123456789"),
        "cellular.ssl_ctx": ("int", 0, 9),
        "obd.enabled": ("bool",),
        "obd.pids": ("pids",),
        "obd.dtc_interval_s": ("int", 10, 86400),
        "gnss.source": ("enum", ("uart", "modem", "coproc", "none")),
        "gnss.interval_ms": ("int", 100, 3600000),
        "batch.max_records": ("int", 1, 500),
        "batch.max_age_ms": ("int", 0, 3600000),
        "batch.max_bytes": ("int", 256, 10240),  # SIM7600 AT+CMQTTPAYLOAD takes at most 10240 bytes
        "queue.max_bytes": ("int", 4096, None),
        "queue.segment_bytes": ("int", 512, 1048576),
        "queue.sync_ms": ("int", 0, 60000),
        "intervals.battery_ms": ("int", 100, 86400000),
        "intervals.signal_ms": ("int", 100, 86400000),
        "intervals.status_ms": ("int", 1000, 86400000),
        "intervals.record_ms": ("int", 100, 3600000, True),
        "intervals.reconnect_min_ms": ("int", 100, 600000),
        "intervals.reconnect_max_ms": ("int", 1000, 3600000),
        "intervals.wdt_feed_ms": ("int", 100, 30000),  # at most half the 60 s hardware watchdog
        "standby.voltage_off": ("float", 0, 30),
        "standby.voltage_wake": ("float", 0, 30),
        "standby.stationary_s": ("int", 0, 86400),
        "standby.heartbeat_s": ("int", 0, 86400),
        "standby.flush_s": ("int", 0, 3600),
        "commands.enabled": ("bool",),
        "debug.at_log": ("str", 0, 255, None),
        "debug.at_log_max": ("int", 1024, 1048576),
        "commands.window_s": ("int", 10, 86400),
        "commands.nonces": ("int", 1, 1024),
    }


SCHEMA = _schema()
del _defaults, _schema
PID_INTERVAL = (100, 3600000)

SECRETS_SCHEMA = {
    "apn_user": ("str", 0, 64, AT),
    "apn_pass": ("str", 0, 64, AT),
    "mqtt_user": ("str", 0, 256, AT),
    "mqtt_pass": ("str", 0, 256, AT),
    "hmac_key": ("key",),
    "wifi_ssid": ("str", 0, 32, None),
    "wifi_password": ("str", 0, 64, None),
    "certs.ca": ("str", 0, 128, None),
    "certs.cert": ("str", 0, 128, None),
    "certs.key": ("str", 0, 128, None),
}
HMAC_KEY_MIN = 32  # characters, when commands are enabled (issue 11 #9)
HMAC_KEY_DISTINCT = 10  # distinct characters at least: "aaaa...", "abab..." are no keys
# Values published in this repository's examples: a device configured with them is not configured.
PLACEHOLDER_KEYS = ("replace-with-32-random-characters",)
PLACEHOLDER_DOMAINS = ("example.com", "example.net", "example.org")  # RFC 2606

# Config keys (in config.json, not secrets.json) whose values are secrets all the same: an error names the
# key and what was expected, never the value given.
HIDDEN_KEYS = ("cellular.sim_pin",)
