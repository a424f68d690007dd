"""Imported into the render pool's forkserver (its preload list) so that it dies with the dataset worker.

The forkserver is the dataset worker's child; its render workers are the forkserver's children and
already die with it (PR_SET_PDEATHSIG in the pool initializer). Without this, a SIGKILLed worker
would leave its forkserver and a render process running for ever, re-parented to init.
Importing this module anywhere else would tie that process's life to its parent: only the
forkserver preload names it. A parent killed before the prctl took effect (the forkserver's first
~100 ms) is caught by comparing the parent pid with the one the worker left in the environment.
"""

from __future__ import annotations

import os

from quakestack.jobs.fanout import die_with_parent

PARENT_ENV = "RENDER_POOL_PARENT"  # not QUAKESTACK_*: a process fact, not a setting

die_with_parent()
if os.environ.get(PARENT_ENV, str(os.getppid())) != str(os.getppid()):
    os._exit(0)  # the worker died before the prctl: re-parented already, nothing would ever kill us
