"""Segments as definitions: checks and serialization (store behaviour is in the contract suite)."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given, settings

from crmcore import Field, Money, ValidationError
from crmcore.conditions import All
from crmcore.customers.segments import Segment, uses_facts
from crmcore.serialization import structure, unstructure
from crmcore.testing import strategies as cst

# --- definition ---


@settings(max_examples=60, deadline=None)
@given(segment=cst.segments())
def test_segments_round_trip_through_serialization(segment: Segment) -> None:
    """A segment is plain data: unstructure then structure gives it back equal."""
    assert structure(unstructure(segment), Segment) == segment


def test_total_spend_needs_a_currency() -> None:
    """A segment on total_spend without a currency is refused when it is defined."""
    with pytest.raises(ValidationError) as caught:
        Segment(name="big spenders", condition=Field("total_spend") > Money("100", "EUR"))
    assert caught.value.field == "condition"
    assert "needs the segment's currency" in caught.value.reason


def test_total_spend_compares_in_the_segment_currency() -> None:
    """Comparing total_spend with an amount in another currency is refused, naming both."""
    with pytest.raises(ValidationError, match=r"total_spend is in EUR.*is in USD"):
        Segment(
            name="x",
            condition=All(
                Field("order_count") > 0, Field("total_spend").between(Money("1", "USD"), Money("2", "USD"))
            ),
            currency="EUR",
        )


def test_bad_segment_reports_every_problem_with_paths() -> None:
    """Unknown fields, wrong types, naive datetimes and a bad currency are all listed at once."""
    cond = (
        (Field("nope") == 1)
        & (Field("order_count") == "three")
        & (Field("last_order_at") > datetime(2025, 1, 1))  # naive
        & (Field("total_spend") > Money("1", "EUR"))
    )
    with pytest.raises(ValidationError) as caught:
        Segment(name="", condition=cond, currency="eur")
    paths = [e.path for e in caught.value.errors]
    assert paths == [
        "name",
        "currency",
        "condition.conditions[0]",
        "condition.conditions[1]",
        "condition.conditions[2]",
    ]  # total_spend is not checked against a currency that is itself bad
    text = str(caught.value)
    assert "unknown field 'nope'" in text and "order_count" in text and "naive datetime" in text


def test_condition_must_be_a_condition() -> None:
    """A segment's condition is a condition tree, not a string to evaluate."""
    with pytest.raises(ValidationError, match="must be a condition"):
        Segment(name="x", condition="country == 'DE'")  # type: ignore[arg-type]


def test_uses_facts_looks_at_condition_and_order() -> None:
    """Only queries naming a fact need the orders aggregated."""
    assert not uses_facts(Field("country") == "DE", ["-name"])
    assert uses_facts(~(Field("order_count") > 1))
    assert uses_facts(None, ["-last_order_at"])
