"""A local stack's processes live and die with the process that started it (`quakestack up`, the demo, a test).

The stack ties its services to itself (the kernel SIGKILLs a service whose starter dies), and hands its own
identity to them in `JOB_STACK_PID`; their job workers inherit it. A worker outlives its service by design
(a restarted service re-attaches to it), but not the stack: it checks on every heartbeat that the stack's
process still runs and, once it is gone, puts its job back in the queue (no retry spent) and leaves. Services
run under Kubernetes, compose or by hand carry no such variable and are tied to nothing.
"""

from __future__ import annotations

import contextlib
import os
import signal

import psutil

from quakestack.jobs.fanout import die_with_parent

# not QUAKESTACK_*: settings refuse unknown QUAKESTACK_ variables, and this describes a process, not a setting
STACK_ENV = "JOB_STACK_PID"


def stack_identity() -> dict[str, str]:
    """The variable a stack puts in its services' environment: this process, by pid and start time."""
    me = psutil.Process()
    return {STACK_ENV: f"{me.pid}:{me.create_time():.3f}"}


def _stack() -> tuple[int, float] | None:
    text = os.environ.get(STACK_ENV, "")
    pid, _, started = text.partition(":")
    with contextlib.suppress(ValueError):
        return int(pid), float(started)
    return None


def tie_to_stack() -> None:
    """In a service a stack started: die with it (its starter) even when it is SIGKILLed."""
    stack = _stack()
    if stack is None:
        return
    die_with_parent()
    if os.getppid() != stack[0]:  # it died before the prctl took effect
        os.kill(os.getpid(), signal.SIGKILL)


def stack_gone() -> bool:
    """Whether this process belongs to a local stack whose process has ended (False outside a stack)."""
    stack = _stack()
    if stack is None:
        return False
    try:
        proc = psutil.Process(stack[0])
        return abs(proc.create_time() - stack[1]) > 1.0 or proc.status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return True
