# A flash that fills up, for the store tests (mp_store, both runtimes) and the soak (scripts/soak.py):
# telelogger.store.PosixFS whose data writes fail with ENOSPC.
from telelogger.store import PosixFS


class FullFlashFS(PosixFS):
    """Writes raise OSError(28) (ENOSPC) while `full` is set and for the next `fail` writes.
    partial=True writes the first half of the data before raising (a torn write); files whose
    path ends with `spare` (e.g. the store's "tmp" pointer file) never fail. `enospc` counts."""

    def __init__(self, partial=False, spare=None):
        self.full = False
        self.fail = 0
        self.enospc = 0
        self.partial = partial
        self.spare = spare

    def open(self, path, mode):
        f = PosixFS.open(path, mode)
        if ("a" in mode or "w" in mode) and not (self.spare and path.endswith(self.spare)):
            return _FullFile(f, self)
        return f


class _FullFile:
    def __init__(self, f, fs):
        self.f = f
        self.fs = fs

    def write(self, b):
        fs = self.fs
        if fs.fail or fs.full:
            if fs.fail:
                fs.fail -= 1
            fs.enospc += 1
            if fs.partial:
                self.f.write(bytes(b)[: len(b) // 2])
            raise OSError(28)  # ENOSPC
        return self.f.write(b)

    def __getattr__(self, name):
        return getattr(self.f, name)

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.f.close()
