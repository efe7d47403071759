"""One training run per model folder: a lock file beside `--out` (OUT.lock) held for the run.

A second `attncli train` into the same folder is refused with the holder's process id, host and
start time, instead of both runs claiming the folder. The lock is an advisory `flock`, released
by the operating system when the process ends, however it ends; the file itself stays (removing
it would race with a run taking it). Where `fcntl` does not exist (Windows) there is no lock.
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
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(descriptor, 200, 0).decode("utf-8", "replace").strip() or "another process"
            raise OptionError(f"--out {out_dir}: another attncli train is writing it ({holder}); "
                              f"wait for it to end or choose another --out.") from None
        os.ftruncate(descriptor, 0)
        stamp = f"pid {os.getpid()} on {socket.gethostname()}, since {time.strftime('%Y-%m-%d %H:%M:%S')}"
        os.pwrite(descriptor, stamp.encode(), 0)
        yield
    finally:
        os.close(descriptor)                # releases the lock
