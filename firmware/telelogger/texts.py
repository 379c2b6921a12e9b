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
    "store append failed: %s",  # 15 STORE_FAILED
    "network: %s; %d records kept, retry in %d ms",  # 16 NET_RETRY
    # sampler.py
    "vehicle check: %s",  # 17 VEHICLE_CHECK
    "OBD init failed: %s",  # 18 OBD_INIT
    "OBD: %d rounds without an answer, re-initialising",  # 19 OBD_SILENT
    # status.py
    "task %s silent for %d ms: letting the watchdog fire",  # 20 TASK_SILENT
    # store.py
    "record of %d bytes (max %d)",  # 21 RECORD_SIZE
    # app.py
    "disconnect: %s",  # 22 DISCONNECT
    "telelogger: resetting: %s",  # 23 RESETTING
    # sampler.py (the polls' debug lines: at most one per poll interval)
    "battery: %s",  # 24 BATTERY
    "signal not read: %s",  # 25 SIGNAL
    "network time: %s",  # 26 NET_TIME
    # loop.py (connect)
    "connected; %d records queued",  # 27 CONNECTED
)
