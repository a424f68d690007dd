"""Imported into the render pool's forkserver (its preload list) so that it dies with the dataset worker.

The forkserver is the dataset worker's child; its render workers are the forkserver's children and
already die with it (PR_SET_PDEATHSIG in the pool initializer). Without this, a SIGKILLed worker
would leave its forkserver and a render process running for ever, re-parented to init.
Importing this module anywhere else would tie that process's life to its parent: only the
forkserver preload names it.
"""

from __future__ import annotations

import contextlib
import ctypes
import signal

PR_SET_PDEATHSIG = 1

with contextlib.suppress(OSError, AttributeError):
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
