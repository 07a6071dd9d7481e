"""The imperative shell around the router: rotation state loaded and saved in a unit of work.

`assign` routes one subject with the stored state of the queue that takes the turn and saves
the new state in the caller's unit of work (the caller sets the owner on the subject, records
its event and commits). Two processes routing through one queue at once both read the same
state; the store's optimistic concurrency lets one commit and refuses the other with
`ConcurrencyError`, so no turn is handed out twice. `assign_with_retry` runs the whole unit of
work again on that error, with fresh state.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from crmcore.assignment.decision import AssignmentDecision
from crmcore.assignment.roster import Roster
from crmcore.assignment.router import Router
from crmcore.assignment.state import QueueState
from crmcore.errors import AlreadyExists, ConcurrencyError, NotFound, ValidationError

if TYPE_CHECKING:
    from crmcore.facade import CRM
    from crmcore.storage.base import UnitOfWork

__all__ = ["assign", "assign_with_retry"]

R = TypeVar("R")


def assign(
    uow: UnitOfWork, router: Router, subject: Any, roster: Roster, now: datetime
) -> AssignmentDecision:
    """Route ``subject`` and save the queue's new rotation state in ``uow`` (not committed).

    The state is created on the queue's first turn. Commit ``uow`` to keep the turn; a unit of
    work that lost a race fails on save or commit with `ConcurrencyError` (retry it whole, e.g.
    with `assign_with_retry`).

    Raises:
        ConcurrencyError: another unit of work took a turn of the queue first (including
            creating its state).
        ValidationError: a naive ``now``, a roster that is no `Roster`.
    """
    queue = router.queue_for(subject, roster, now)
    repo = uow.assignment_queues
    state: QueueState | None = None
    if queue is not None:
        try:
            state = repo.get(queue)
        except NotFound:
            state = None
    routing = router.route(
        subject, roster, now, {queue: state} if queue is not None and state is not None else None
    )
    new = routing.state
    if new is not None:
        if new.version == 0:
            try:
                repo.add(new)
            except AlreadyExists:
                raise ConcurrencyError(
                    f"queue {new.id!r} got its rotation state from another unit of work meanwhile: "
                    "run the unit of work again"
                ) from None
        else:
            repo.save(new)
    return routing.decision


def assign_with_retry(crm: CRM, tenant: str, work: Callable[[UnitOfWork], R], *, attempts: int = 5) -> R:
    """Run ``work`` in a new unit of work of ``tenant`` and commit, again on `ConcurrencyError`.

    ``work`` must read everything it decides on inside the unit of work it is given (it runs
    again from the start after a conflict, on fresh data); its result is returned once a commit
    succeeds.

    Raises:
        ConcurrencyError: every one of ``attempts`` lost a race.
        ValidationError: ``attempts`` is not a positive integer.
    """
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
        raise ValidationError("attempts", f"must be a positive integer, got {attempts!r}")
    last: ConcurrencyError | None = None
    for _ in range(attempts):
        with crm.unit_of_work(tenant) as uow:
            try:
                result = work(uow)
                uow.commit()
            except ConcurrencyError as exc:
                last = exc
                continue
            return result
    assert last is not None
    raise last
