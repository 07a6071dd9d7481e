"""RFM scores, segments and the Pareto view."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crmcore.analytics.rfm import (
    DEFAULT_SEGMENTS,
    RfmConfig,
    RfmMethod,
    RfmResult,
    SegmentRule,
    pareto,
    rfm,
)
from crmcore.analytics.summaries import CustomerSummaries, CustomerSummary, TimeUnit
from crmcore.errors import ValidationError
from crmcore.money import Money
from crmcore.serialization import structure, unstructure

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def _summary(
    cid: str, *, since_last: float, frequency: int, spend: str, age: float = 400.0
) -> CustomerSummary:
    return CustomerSummary(
        customer_id=cid,
        frequency=frequency,
        recency=age - since_last,
        age=age,
        monetary_value=Money.zero("EUR"),
        total_spend=Money(spend, "EUR"),
        orders=frequency + 1,
        first_order_at=T0 - timedelta(days=age),
        last_order_at=T0 - timedelta(days=since_last),
    )


def _summaries(*rows: CustomerSummary) -> CustomerSummaries:
    return CustomerSummaries.of(rows, observed_at=T0, unit=TimeUnit.DAYS, currency="EUR")


def _ten() -> CustomerSummaries:
    """c0 bought least recently, least often and least; c9 most recently, most often and most."""
    return _summaries(
        *(
            _summary(f"c{i}", since_last=100.0 - 10 * i, frequency=i, spend=f"{(i + 1) * 10}.00")
            for i in range(10)
        )
    )


def test_quintiles_split_distinct_values_evenly_and_reward_recent_customers() -> None:
    """Ten distinct customers get scores 1,1,2,2,...,5,5 in each dimension; recent means high R."""
    result = rfm(_ten())
    assert [s.r for s in result.customers] == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert [s.f for s in result.customers] == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert [s.m for s in result.customers] == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    best = result.customers[-1]
    assert (best.code, best.segment, best.recency, best.frequency) == ("555", "champions", 10.0, 10)
    assert result.customers[0].segment == "lost"


def test_tied_values_share_a_score() -> None:
    """Six one-time buyers share one F score; the four repeat buyers score above them."""
    rows = [_summary(f"c{i}", since_last=5.0 * i, frequency=0, spend="10.00") for i in range(6)]
    rows += [_summary(f"d{i}", since_last=1.0, frequency=i + 1, spend="10.00") for i in range(4)]
    result = rfm(_summaries(*rows))
    f = {s.customer_id: s.f for s in result.customers}
    assert {f[f"c{i}"] for i in range(6)} == {2}  # mid-rank 3/10 of the way up
    assert [f[f"d{i}"] for i in range(4)] == [4, 4, 5, 5]
    assert {s.m for s in result.customers} == {3}  # everybody spent the same


@given(st.lists(st.integers(0, 20), min_size=1, max_size=60), st.integers(2, 10))
def test_quantile_scores_are_monotone_and_in_range(values: list[int], scores: int) -> None:
    """Higher frequency never scores lower, equal values score equal, and scores stay in 1..scores."""
    rows = [_summary(f"c{i:03d}", since_last=1.0, frequency=v, spend="1.00") for i, v in enumerate(values)]
    segments = (SegmentRule(segment="all", recency=(1, scores), frequency=(1, scores)),)
    result = rfm(_summaries(*rows), RfmConfig(scores=scores, segments=segments))
    pairs = sorted((s.frequency, s.f) for s in result.customers)
    assert all(1 <= f <= scores for _, f in pairs)
    assert all(a[1] <= b[1] and (a[0] != b[0] or a[1] == b[1]) for a, b in itertools.pairwise(pairs))
    if len(set(values)) == len(values) and len(values) % scores == 0:
        per_score = [sum(1 for _, f in pairs if f == k) for k in range(1, scores + 1)]
        assert per_score == [len(values) // scores] * scores


def test_fixed_bins_put_edge_values_in_the_upper_bin() -> None:
    """With edges an edge value scores in the upper bin; for R a longer absence scores lower."""
    config = RfmConfig(
        method="bins",
        scores=3,
        recency_edges=(30.0, 90.0),
        frequency_edges=(2.0, 5.0),
        monetary_edges=(Decimal(100), Decimal(1000)),
        segments=(SegmentRule(segment="everyone", recency=(1, 3), frequency=(1, 3)),),
    )
    assert config.method is RfmMethod.BINS
    rows = [
        _summary("a", since_last=29.0, frequency=0, spend="99.99"),
        _summary("b", since_last=30.0, frequency=1, spend="100.00"),
        _summary("c", since_last=90.0, frequency=4, spend="1000.00"),
    ]
    assert [s.code for s in rfm(_summaries(*rows), config).customers] == ["311", "222", "133"]


def test_default_grid_names_every_cell_as_documented() -> None:
    """The default 5 x 5 grid gives each (R, F) cell the segment shown in the docs."""
    table = {
        5: ["new customers", "potential loyalists", "potential loyalists", "champions", "champions"],
        4: ["promising", "potential loyalists", "potential loyalists", "loyal customers", "loyal customers"],
        3: ["about to sleep", "about to sleep", "need attention", "loyal customers", "loyal customers"],
        2: ["hibernating", "hibernating", "at risk", "at risk", "can't lose them"],
        1: ["lost", "lost", "at risk", "at risk", "can't lose them"],
    }
    for r, names in table.items():
        for f, name in enumerate(names, start=1):
            assert next(rule.segment for rule in DEFAULT_SEGMENTS if rule.matches(r, f)) == name
    assert len({rule.segment for rule in DEFAULT_SEGMENTS}) == 11


def test_bad_configs_report_every_problem_at_once() -> None:
    """Wrong edge counts, unordered edges and uncovered grid cells are all reported together."""
    with pytest.raises(ValidationError) as info:
        RfmConfig(
            method=RfmMethod.BINS,
            scores=3,
            recency_edges=(1.0,),
            frequency_edges=(5.0, 2.0),
            monetary_edges=(Decimal(1), Decimal(2)),
            segments=(SegmentRule(segment="x", recency=(1, 3), frequency=(1, 2)),),
        )
    message = str(info.value)
    assert "recency_edges" in message and "needs 2 edges" in message
    assert "frequency_edges" in message and "ascending" in message
    assert "monetary_edges" not in message
    with pytest.raises(ValidationError, match="R1F3, R2F3, R3F3"):
        RfmConfig(scores=3, segments=(SegmentRule(segment="x", recency=(1, 3), frequency=(1, 2)),))
    with pytest.raises(ValidationError, match="'quantile', 'bins'"):
        RfmConfig(method="deciles")
    with pytest.raises(ValidationError, match="only used with method 'bins'"):
        RfmConfig(recency_edges=(1.0, 2.0, 3.0, 4.0))
    with pytest.raises(ValidationError, match=r"segments\[0\].recency"):
        RfmConfig(scores=5, segments=(SegmentRule(segment="x", recency=(0, 6), frequency=(1, 5)),))


def test_config_and_result_round_trip_through_json() -> None:
    """RfmConfig and RfmResult unstructure to JSON and structure back equal."""
    config = RfmConfig(
        method=RfmMethod.BINS,
        scores=2,
        recency_edges=(30.0,),
        frequency_edges=(2.0,),
        monetary_edges=(Decimal("99.5"),),
        segments=(SegmentRule(segment="all", recency=(1, 2), frequency=(1, 2)),),
    )
    assert structure(json.loads(json.dumps(unstructure(config))), RfmConfig) == config
    result = rfm(_ten())
    assert structure(json.loads(json.dumps(unstructure(result))), RfmResult) == result


def test_segment_counts_and_grid_count_every_customer() -> None:
    """Counts per segment (in rule order) and per cell add up to the customers."""
    result = rfm(_ten())
    counts = result.segment_counts()
    assert list(counts) == [rule.segment for rule in DEFAULT_SEGMENTS]
    assert sum(counts.values()) == sum(result.grid().values()) == 10
    assert counts["champions"] == 2 and counts["lost"] == 2
    assert result.grid()[5, 5] == 2


def test_empty_summaries_give_an_empty_result() -> None:
    """No customers: no scores, every segment counts zero."""
    result = rfm(_summaries())
    assert result.customers == () and set(result.segment_counts().values()) == {0}


def test_pareto_finds_the_fewest_customers_bringing_the_target() -> None:
    """One of ten customers brings 80 % of revenue: share 0.1; the curve runs from (0,0) to (1,1)."""
    rows = [_summary("big", since_last=1.0, frequency=3, spend="900.00")]
    rows += [_summary(f"s{i}", since_last=1.0, frequency=0, spend="25.00") for i in range(9)]
    rows += [_summary("zero", since_last=1.0, frequency=0, spend="0.00")]
    view = pareto(_summaries(*rows))
    assert (view.customers, view.customers_needed) == (11, 1)
    assert view.customer_share == pytest.approx(1 / 11)
    assert view.revenue == Money("1125.00", "EUR")
    assert view.curve[0] == (0.0, 0.0) and view.curve[-1] == (1.0, 1.0)
    assert view.curve[1][1] == pytest.approx(0.8)
    assert pareto(_summaries(*rows), target=0.88).customers_needed == 5  # 990 of 1125: 900 + 4 x 25
    assert view.revenue_share_of_top(0.0) == 0.0
    assert view.revenue_share_of_top(1.0) == 1.0


def test_pareto_refuses_no_revenue_and_bad_targets() -> None:
    """Without revenue there is nothing to split; a target must be in (0, 1]."""
    with pytest.raises(ValidationError, match="no revenue"):
        pareto(_summaries(_summary("a", since_last=1.0, frequency=0, spend="0.00")))
    with pytest.raises(ValidationError, match="target"):
        pareto(_ten(), target=80)


def test_to_dataframe_gives_scores_segments_and_the_curve() -> None:
    """RfmResult and ParetoView convert to DataFrames with their documented columns."""
    pytest.importorskip("pandas")
    frame = rfm(_ten()).to_dataframe()
    assert list(frame.columns) == ["recency", "frequency", "monetary", "r", "f", "m", "code", "segment"]
    assert frame.loc["c9", "segment"] == "champions"
    curve = pareto(_ten()).to_dataframe()
    assert list(curve.columns) == ["customer_share", "revenue_share"]
    assert len(curve) == 11
