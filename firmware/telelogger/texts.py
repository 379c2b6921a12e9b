# The texts of the resident telelogger modules' errors and log lines (record.py, loop.py, sampler.py,
# status.py, store.py, app.py), looked up when one is raised or written (tasks.text: this module is
# imported for the lookup and forgotten again). A str constant of more than 10 characters is a heap
# object for as long as the module holding it is loaded: here they cost nothing while nothing goes
# wrong. Each text keeps the wording it had inline; a module names it by number (`_T_NAME = const(n)`,
# the name in the comment beside it), and host_tests/test_texts.py checks every number against these
# names and each use's % arguments against its text. Not here: what must work with the heap
# exhausted (tasks.fault's texts) and the OBD task's debug line per failed PID read.
TEXTS = (
    # record.py
    "uvarint of negative %d",  # 0 NEG_UVARINT
    "truncated varint at byte %d",  # 1 VARINT_CUT
    "varint too long at byte %d",  # 2 VARINT_LONG
    "cannot encode %r",  # 3 NOT_FINITE
    "not a decimal number: %r",  # 4 NOT_DECIMAL
    "cannot encode value of type %s",  # 5 VALUE_TYPE
    "key 0x%x: %d values, expected 1..%d",  # 6 VALUE_COUNT
    "sample key must be a non-negative int, got %r",  # 7 SAMPLE_KEY
    "key 0x%x (%s): %s",  # 8 KEY_VALUE
    "empty record",  # 9 EMPTY_RECORD
    "record version %d, expected %d",  # 10 RECORD_VERSION
    "truncated sample 0x%x",  # 11 SAMPLE_CUT
    "sample 0x%x: %d decimals",  # 12 SAMPLE_DP
    "unknown batch format %r (compact|json)",  # 13 BATCH_FORMAT
    "seqs must increase: %d after %d",  # 14 SEQ_ORDER
    # loop.py
    "%s time %d s (UTC) refused: %s; %s",  # 15 UTC_REFUSED
    "%d s from the network's time",  # 16 UTC_DISAGREE
    "outside 2024..2099 (a GPS week rollover?)",  # 17 UTC_RANGE
    "UTC stays unknown",  # 18 UTC_UNKNOWN
    "UTC stays as it was",  # 19 UTC_KEPT
    "store append failed: %s",  # 20 STORE_FAILED
    "network: %s; %d records kept, retry in %d ms",  # 21 NET_RETRY
    # sampler.py
    "vehicle check: %s",  # 22 VEHICLE_CHECK
    "OBD init failed: %s",  # 23 OBD_INIT
    "OBD: %d rounds without an answer, re-initialising",  # 24 OBD_SILENT
    # status.py
    "task %s silent for %d ms: letting the watchdog fire",  # 25 TASK_SILENT
    # store.py
    "record of %d bytes (max %d)",  # 26 RECORD_SIZE
    # loop.py (set_utc: the source, by its gnss flag)
    "network GNSS",  # 27 UTC_SOURCES
    # app.py
    "disconnect: %s",  # 28 DISCONNECT
    "telelogger: resetting: %s",  # 29 RESETTING
    # sampler.py (the polls' debug lines: at most one per poll interval)
    "battery: %s",  # 30 BATTERY
    "signal not read: %s",  # 31 SIGNAL
    "network time: %s",  # 32 NET_TIME
)
