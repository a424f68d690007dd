"""One lifecycle for every kind of job."""

from __future__ import annotations

from enum import Enum


class JobState(str, Enum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    STOPPING = "STOPPING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    STOPPED = "STOPPED"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED, JobState.STOPPED})
RESUMABLE = frozenset({JobState.STOPPED, JobState.FAILED, JobState.SUCCEEDED})

# which state may follow which; anything else in a log (a late writer) is ignored by the fold
TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.QUEUED: frozenset({JobState.RUNNING, JobState.STOPPED, JobState.CANCELLED, JobState.FAILED,
                                JobState.QUEUED}),
    JobState.RUNNING: frozenset({JobState.STOPPING, JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED,
                                 JobState.STOPPED, JobState.QUEUED}),
    JobState.STOPPING: frozenset({JobState.STOPPED, JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED,
                                  JobState.QUEUED}),
    JobState.SUCCEEDED: frozenset({JobState.QUEUED}),  # resume with more epochs
    JobState.FAILED: frozenset({JobState.QUEUED}),
    JobState.STOPPED: frozenset({JobState.QUEUED}),
    JobState.CANCELLED: frozenset(),
}


def allowed(current: JobState, new: JobState) -> bool:
    return new in TRANSITIONS[current]
