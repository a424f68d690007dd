"""keep_freed_memory: freed blocks are reused instead of coming back as fresh pages the kernel must zero.

Each case runs in its own interpreter (the tuning is process-wide and cannot be undone): a thread
allocates and frees arrays of varying size, as a model's forward passes at varying batch sizes do.
"""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO_ROOT

CHURN = """
import resource, sys, threading
import numpy as np
from quakestack.runtime.memory import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory(), "mallopt refused"
def work():
    rng = np.random.default_rng(0)
    for _ in range(5):
        np.ones(6_000_000, np.float32)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for n in rng.integers(1_000_000, 6_000_000, 50):  # 4-24 MB, three alive at a time
        a = np.ones(int(n), np.float32); b = a * 2; c = b + 1; del a, b, c
    print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 50)
t = threading.Thread(target=work); t.start(); t.join()
"""


def faults_per_cycle(mode: str) -> float:
    out = subprocess.run([sys.executable, "-c", CHURN, mode], cwd=REPO_ROOT, capture_output=True, text=True,
                         timeout=120, check=True)
    return float(out.stdout.strip())


def test_kept_blocks_are_reused_instead_of_faulting_in_fresh_pages() -> None:
    default, kept = faults_per_cycle("default"), faults_per_cycle("keep")
    assert default > 200, f"glibc's default should fault in fresh pages here ({default:.0f} per cycle)"
    assert kept < default / 4, f"kept blocks still fault: {kept:.0f} per cycle against {default:.0f}"
