"""Every change of a task's state, in one place.

The worker, the admin actions, the Tasks backend and the management commands call these
functions; none of them writes ``status`` by hand. Each change is a guarded ``UPDATE … WHERE
status=…`` (and, for a worker's claim, ``AND claim_token=…``), so concurrent actors cannot undo
each other's work. ``claiming``: a worker takes tasks; ``endings``: their attempts end, and what
waits on them is settled; ``staff``: what the admin and the commands do to tasks.
"""

from __future__ import annotations

from django_simple_queue.lifecycle.claiming import claim, claim_one
from django_simple_queue.lifecycle.endings import (
    Ending,
    Outcome,
    append_output,
    finish,
    finish_many,
    heartbeat,
    held_claims,
    release,
    release_unknown,
    rescue_stale,
    retry_delay,
    settle_left,
)
from django_simple_queue.lifecycle.staff import (
    ANALYZE_AFTER,
    Requeued,
    analyze,
    cancel,
    delete,
    edit_queued,
    emptied_batches,
    enqueue_again,
    prunable,
    prune,
    requeue_copies,
)

__all__ = [
    "ANALYZE_AFTER",
    "Ending",
    "Outcome",
    "Requeued",
    "analyze",
    "append_output",
    "cancel",
    "claim",
    "claim_one",
    "delete",
    "edit_queued",
    "emptied_batches",
    "enqueue_again",
    "finish",
    "finish_many",
    "heartbeat",
    "held_claims",
    "prunable",
    "prune",
    "release",
    "release_unknown",
    "requeue_copies",
    "rescue_stale",
    "retry_delay",
    "settle_left",
]
