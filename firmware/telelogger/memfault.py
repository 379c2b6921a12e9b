# Kept importable for callers of its old home (telelogger/loopinit.py): the memory-fault handling
# (guarded, fault) lives in telelogger/tasks.py now, one module fewer on the device (3 names).
from telelogger.tasks import fault, guarded  # noqa: F401
