"""A generated history of won and lost leads whose outcome depends on known fields.

For tests, benchmarks and documentation of predictive scoring: a model trained on it should find
the fields that drive the outcome (``industry``, ``source``, ``company_size``) and ignore the
noise (``country``, ``campaign``, ``title``). The same ``n`` and ``seed`` give the same history.
"""

from __future__ import annotations

import math
import random

import attrs

from crmcore.pipeline.lead import Lead

__all__ = ["DRIVERS", "LeadHistory", "NOISE", "lead_history"]

_INDUSTRY = {
    "software": 1.6,
    "fintech": 1.1,
    "health": 0.3,
    "media": 0.0,
    "retail": -0.6,
    "manufacturing": -0.9,
    "government": -1.4,
    "education": -1.7,
}
_SOURCE = {
    "referral": 1.7,
    "demo_request": 1.3,
    "event": 0.3,
    "web": 0.0,
    "paid_ads": -0.9,
    "cold_list": -1.7,
}
_SIZE_EDGES = (10, 50, 200, 1000, 5000)
_SIZE = (-1.4, -0.5, 0.3, 1.0, 0.6, -0.3)
_REGION = {"emea": 0.15, "amer": 0.1, "apac": -0.15, "latam": -0.1}
_COUNTRIES = ("DE", "FR", "GB", "US", "BR", "JP", "IN", "ES", "IT", "NL")
_CAMPAIGNS = (None, *(f"campaign-{i:02d}" for i in range(12)))
_TITLES = ("CEO", "CTO", "VP Sales", "Head of IT", "Engineer", "Analyst", "Buyer", "Office Manager")
_BASE = -0.7

DRIVERS = ("industry", "source", "company_size")
"""The fields that drive the outcome strongly (``region`` weakly)."""
NOISE = ("country", "campaign", "title")
"""The fields that have nothing to do with the outcome."""


@attrs.frozen(kw_only=True)
class LeadHistory:
    """Generated ``leads`` and whether each was won (``outcomes``, same order)."""

    leads: tuple[Lead, ...]
    outcomes: tuple[bool, ...]


def lead_history(n: int, seed: int = 0) -> LeadHistory:
    """``n`` leads with outcomes drawn from a known logistic model (see the module's tables)."""
    rng = random.Random(seed)
    industries, sources, regions = list(_INDUSTRY), list(_SOURCE), list(_REGION)
    leads = []
    outcomes = []
    for i in range(n):
        industry = rng.choice(industries)
        source = rng.choice(sources)
        region = rng.choice(regions)
        size = min(10_000_000, int(math.exp(rng.uniform(0.0, 9.5))))
        band = sum(size >= edge for edge in _SIZE_EDGES)
        z = _BASE + _INDUSTRY[industry] + _SOURCE[source] + _SIZE[band] + _REGION[region]
        outcomes.append(rng.random() < 1.0 / (1.0 + math.exp(-z)))
        leads.append(
            Lead(
                id=f"lead-{seed}-{i:06d}",
                name=f"Lead {i}",
                company=f"Company {i}",
                title=rng.choice(_TITLES),
                source=source,
                campaign=rng.choice(_CAMPAIGNS),
                industry=industry,
                company_size=size,
                country=rng.choice(_COUNTRIES),
                region=region,
            )
        )
    return LeadHistory(leads=tuple(leads), outcomes=tuple(outcomes))
