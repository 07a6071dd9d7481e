"""What every lead-scoring model returns: a `Score` and the `Factor`s that make it up.

Both models (`PointsModel`, `NaiveBayesModel`) return the same plain, serializable result, so a
host stores, shows and compares scores without knowing which model produced them.
"""

from __future__ import annotations

import attrs

__all__ = ["Factor", "Score"]


@attrs.frozen(kw_only=True)
class Factor:
    """One reason a score is what it is: its ``name``, its ``contribution`` and a sentence.

    ``name`` is a points rule's name or an activity kind (points model), or a lead field
    (naive Bayes). ``contribution`` is in the model's unit: points, or a log-likelihood ratio
    (natural log; positive favours winning). ``detail`` says why, for people.
    """

    name: str
    contribution: float
    detail: str = ""


@attrs.frozen(kw_only=True)
class Score:
    """A lead's score: its ``value``, the ``factors`` behind it (largest first) and the ``model``.

    ``base`` is the model's value before any factor: 0 points for the points model (``value`` is
    ``base`` plus the contributions), the training base rate's log-odds for naive Bayes
    (``value`` is the probability ``1 / (1 + exp(-(base + sum of contributions)))``).
    """

    value: float
    factors: tuple[Factor, ...]
    model: str
    base: float = 0.0

    def factor(self, name: str) -> Factor | None:
        """The factor called ``name``, or None when it did not contribute."""
        for f in self.factors:
            if f.name == name:
                return f
        return None


def factor_order(f: Factor) -> tuple[float, str]:
    """Sort key for factors: largest ``|contribution|`` first, then by name (so ties are stable)."""
    return (-abs(f.contribution), f.name)
