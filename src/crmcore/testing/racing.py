"""Racing units of work from several threads, for contract tests of concurrent writers."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable

from crmcore.errors import ConcurrencyError

__all__ = ["race_threads"]


def race_threads(threads: int, rounds: int, one_round: Callable[[random.Random], None]) -> None:
    """Run ``one_round`` ``rounds`` times in each of ``threads`` threads at once.

    A round that raises `ConcurrencyError` is retried (up to 200 times): what a host does after a
    conflict. Each thread passes its own seeded ``random.Random`` (seed = thread number). Any other
    error, or a round that never gets through, fails the caller.
    """
    errors: list[BaseException] = []

    def work(seed: int) -> None:
        rng = random.Random(seed)
        try:
            for _ in range(rounds):
                for _attempt in range(200):
                    try:
                        one_round(rng)
                        break
                    except ConcurrencyError:
                        continue
                else:
                    raise AssertionError("no progress after 200 attempts")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(seed,)) for seed in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    assert not errors, errors
