"""One training run per model folder: a lock file beside `--out` (OUT.lock) held for the run.

A second `attncli train` into the same folder is refused with the holder's process id, host and
start time, instead of both runs claiming the folder. The lock is an advisory `flock`, released
by the operating system when the process ends, however it ends. The holder removes the file
when it is done; a run that took the lock on a file removed meanwhile (its inode no longer at the
path) lets it go and tries again, so removing never lets two runs hold it. A file left by a
killed run is simply locked again. Where `fcntl` does not exist (Windows) there is no lock.
"""

from __future__ import annotations

import os
import socket
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .errors import OptionError


def lock_path_for(out_dir: Path) -> Path:
    out = out_dir.absolute()
    return out.with_name(out.name + ".lock")


@contextmanager
def run_lock(out_dir: Path) -> Iterator[None]:
    """Hold the lock of `out_dir` for the block; OptionError if another run holds it."""
    try:
        import fcntl
    except ImportError:                     # not POSIX
        yield
        return
    path = lock_path_for(out_dir)
    descriptor = _acquire(path, out_dir, fcntl)
    try:
        os.ftruncate(descriptor, 0)
        stamp = f"pid {os.getpid()} on {socket.gethostname()}, since {time.strftime('%Y-%m-%d %H:%M:%S')}"
        os.pwrite(descriptor, stamp.encode(), 0)
        yield
    finally:
        try:
            os.unlink(path)                 # while still holding it: no one can be mid-acquire on it
        except OSError:
            pass
        os.close(descriptor)                # releases the lock


def _acquire(path: Path, out_dir: Path, fcntl) -> int:
    """An open descriptor of `path` holding its lock; OptionError naming the holder if it is taken."""
    while True:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(descriptor, 200, 0).decode("utf-8", "replace").strip() or "another process"
            os.close(descriptor)
            raise OptionError(f"--out {out_dir}: another attncli train is writing it ({holder}); "
                              f"wait for it to end or choose another --out.") from None
        try:
            if os.fstat(descriptor).st_ino == os.stat(path).st_ino:
                return descriptor
        except FileNotFoundError:
            pass
        os.close(descriptor)                # the holder removed it as we locked: take the new one
