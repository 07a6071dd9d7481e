"""Funnel and velocity from stage history: hand-built deals with known answers, and funnel invariants."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crmcore.analytics.funnel import Durations, FunnelReport, funnel
from crmcore.errors import ValidationError
from crmcore.money import Money
from crmcore.pipeline.opportunity import Opportunity, StageChange

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
NOW = T0 + timedelta(days=60)
STAGES = ("Qualify", "Demo", "Proposal", "Won")


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


def deal(
    name: str,
    path: Sequence[tuple[str, float]],
    *,
    amount: tuple[str, str] | None = None,
    owner: str | None = None,
    source: str = "",
) -> Opportunity:
    """A deal that entered each (stage, day) of ``path`` in turn; Won/Lost at the end close it."""
    history = tuple(
        StageChange(at=day(d2), from_stage=s1, to_stage=s2, time_in_stage=day(d2) - day(d1))
        for (s1, d1), (s2, d2) in itertools.pairwise(path)
    )
    last, entered = path[-1]
    won = {"Won": True, "Lost": False}.get(last)
    return Opportunity(
        name=name,
        customer_id="acme",
        pipeline="sales",
        stage=last,
        stage_history=history,
        stage_entered_at=day(entered),
        created_at=day(path[0][1]),
        amount=None if amount is None else Money(Decimal(amount[0]), amount[1]),
        owner=owner,
        source=source,
        won=won,
        closed_at=day(entered) if won is not None else None,
        lost_reason="price" if won is False else "",
    )


DEALS = [
    deal(
        "A",
        [("Qualify", 0), ("Demo", 5), ("Proposal", 15), ("Won", 25)],
        amount=("1000", "EUR"),
        owner="u1",
        source="web",
    ),
    deal("B", [("Qualify", 0), ("Demo", 10), ("Lost", 20)], owner="u1", source="web"),
    deal(
        "C",
        [("Qualify", 0), ("Proposal", 4), ("Won", 14)],
        amount=("3000", "EUR"),
        owner="u2",
        source="referral",
    ),
    deal("D", [("Qualify", 2)], owner="u2"),
    deal("E", [("Qualify", 0), ("Demo", 6)], amount=("500", "USD"), owner="u2", source="web"),
    deal("F", [("Qualify", 40), ("Demo", 41), ("Proposal", 43), ("Won", 49)], amount=("2000", "USD")),
]


def test_conversion_counts_reached_stages_including_skips() -> None:
    """Reached counts use history; C skipped Demo yet counts as passing it; Lost is outside the funnel."""
    report = funnel(DEALS, STAGES, NOW)
    total = report.total
    assert total.reached == {"Qualify": 6, "Demo": 5, "Proposal": 3, "Won": 3}
    assert [(c.from_stage, c.to_stage, c.rate) for c in total.conversions] == [
        ("Qualify", "Demo", 5 / 6),
        ("Demo", "Proposal", 3 / 5),
        ("Proposal", "Won", 1.0),
    ]


def test_win_rate_deal_size_and_cycle() -> None:
    """Win rate is won / closed; sizes are per currency of won deals; cycle is creation to close."""
    total = funnel(DEALS, STAGES, NOW).total
    assert (total.deals, total.open, total.won, total.lost) == (6, 2, 3, 1)
    assert total.win_rate == 0.75
    sizes = {d.currency: (d.deals, d.total.amount, d.average.amount) for d in total.deal_sizes}
    assert sizes == {
        "EUR": (2, Decimal(4000), Decimal("2000.00")),
        "USD": (1, Decimal(2000), Decimal("2000.00")),
    }
    assert total.sales_cycle == Durations(count=3, mean_days=16.0, median_days=14.0)


def test_time_in_stage_from_history_and_open_deals() -> None:
    """Finished stays come from StageChange.time_in_stage; open deals add their time so far."""
    times = {s.stage: s for s in funnel(DEALS, STAGES, NOW).total.time_in_stage}
    assert times["Qualify"].durations == Durations(count=6, mean_days=14.0, median_days=5.5)
    assert times["Qualify"].current == 1
    assert times["Demo"].durations == Durations(count=4, mean_days=19.0, median_days=10.0)
    assert times["Proposal"].durations == Durations(count=3, mean_days=26 / 3, median_days=10.0)
    assert (times["Proposal"].current, times["Won"].durations.count) == (0, 0)


def test_grouped_by_owner_source_and_custom() -> None:
    """Groups partition the deals; a deal without a value lands in '(none)'; a function can group."""
    by_owner = funnel(DEALS, STAGES, NOW, group_by="owner")
    assert [g.key for g in by_owner.groups] == ["(none)", "u1", "u2"]
    assert by_owner.group("u1").win_rate == 0.5
    assert by_owner.group("u2").reached == {"Qualify": 3, "Demo": 2, "Proposal": 1, "Won": 1}
    by_source = funnel(DEALS, STAGES, NOW, group_by="source")
    assert {g.key: g.deals for g in by_source.groups} == {"(none)": 2, "referral": 1, "web": 3}
    teams = {"u1": "east", "u2": "west"}
    by_team = funnel(DEALS, STAGES, NOW, group_by=lambda d: teams.get(d.owner or ""))
    assert by_team.grouping == "custom"
    assert {g.key: g.won for g in by_team.groups} == {"(none)": 1, "east": 1, "west": 1}
    with pytest.raises(ValidationError, match="'u3' is not a group"):
        by_owner.group("u3")


def test_grouped_by_period_of_creation_or_close() -> None:
    """Creation periods put every deal somewhere; close periods leave open deals in '(none)'."""
    created = funnel(DEALS, STAGES, NOW, group_by="period", period="month")
    assert created.grouping == "created month"
    assert {g.key: g.deals for g in created.groups} == {"2026-01": 5, "2026-02": 1}
    closed = funnel(DEALS, STAGES, NOW, group_by="period", period_of="closed", period="quarter")
    assert {g.key: (g.won, g.lost) for g in closed.groups} == {"(none)": (0, 0), "2026-Q1": (3, 1)}
    weekly = funnel(DEALS, STAGES, NOW, group_by="period", period="week")
    assert [g.key for g in weekly.groups] == ["2026-W02", "2026-W07"]


def test_rows_and_dataframe() -> None:
    """Rows flatten each table for UIs; to_dataframe gives the same rows; unknown tables are refused."""
    report = funnel(DEALS, STAGES, NOW, group_by="owner")
    summary = report.rows()
    assert [r["group"] for r in summary] == ["all", "(none)", "u1", "u2"]
    assert summary[0]["win_rate"] == 0.75 and summary[0]["cycle_median_days"] == 14.0
    conversion = report.rows("conversion")
    assert len(conversion) == 4 * 3 and conversion[0]["rate"] == 5 / 6
    assert {(r["group"], r["currency"]) for r in report.rows("deal_size")} >= {("all", "EUR"), ("all", "USD")}
    assert len(report.rows("time_in_stage")) == 4 * 4
    pytest.importorskip("pandas")
    frame = report.to_dataframe("conversion")
    assert list(frame.columns) == ["group", "from_stage", "to_stage", "reached_from", "reached_to", "rate"]
    assert frame["reached_from"].tolist() == [r["reached_from"] for r in conversion]
    with pytest.raises(ValidationError, match="'funnel' is not one of"):
        report.rows("funnel")


def test_bad_arguments_are_reported_together() -> None:
    """Too few stages, a naive now, an unknown grouping and period are all reported at once."""
    with pytest.raises(ValidationError) as exc:
        funnel([], ["Qualify"], datetime(2026, 1, 1), group_by="team", period="day")  # type: ignore[arg-type]
    assert {e.path for e in exc.value.errors} == {"stages", "now", "group_by", "period"}


def test_empty_funnel() -> None:
    """Without deals every count is zero and every rate is None."""
    total = funnel([], STAGES, NOW).total
    assert total.win_rate is None and total.sales_cycle == Durations()
    assert all(c.rate is None for c in total.conversions)


@st.composite
def forward_deals(draw: st.DrawFn) -> list[Opportunity]:
    """Deals moving forward one stage at a time, some closed won or lost, owners from a small set."""
    deals = []
    for i in range(draw(st.integers(0, 25))):
        furthest = draw(st.integers(0, 2))
        gaps = draw(st.lists(st.integers(1, 20), min_size=furthest + 1, max_size=furthest + 1))
        path: list[tuple[str, float]] = [("Qualify", float(i))]
        for k in range(1, furthest + 1):
            path.append((STAGES[k], path[-1][1] + gaps[k - 1]))
        ending = draw(st.sampled_from(["open", "Won", "Lost"]))
        if ending != "open":
            path.append((ending, path[-1][1] + gaps[-1]))
        deals.append(deal(f"d{i}", path, owner=draw(st.sampled_from(["u1", "u2", None]))))
    return deals


@given(forward_deals())
def test_funnel_invariants(deals: list[Opportunity]) -> None:
    """Rates lie in [0, 1], reached counts never rise down a forward-only funnel, groups add up."""
    report: FunnelReport = funnel(deals, STAGES, NOW, group_by="owner")
    for metrics in (report.total, *report.groups):
        counts = list(metrics.reached.values())
        assert counts == sorted(counts, reverse=True)
        assert all(c.rate is None or 0.0 <= c.rate <= 1.0 for c in metrics.conversions)
        assert metrics.win_rate is None or 0.0 <= metrics.win_rate <= 1.0
        assert metrics.open + metrics.won + metrics.lost == metrics.deals
    assert sum(g.deals for g in report.groups) == report.total.deals == len(deals)
    for stage in STAGES:
        assert sum(g.reached[stage] for g in report.groups) == report.total.reached[stage]
    assert report.total.reached.get("Qualify", 0) == len(deals)
