"""Lead scoring: points with decaying behaviour points, naive Bayes trained on won and lost leads."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmcore.conditions import All, Condition, Field, evaluate
from crmcore.errors import ValidationError
from crmcore.pipeline.lead import LEAD_FIELDS, Lead
from crmcore.pipeline.scoring import (
    Activity,
    BehaviourRule,
    Factor,
    FieldCounts,
    NaiveBayesModel,
    NaiveBayesScorer,
    PointsModel,
    PointsRule,
    Score,
)
from crmcore.pipeline.scoring.synthetic import DRIVERS, NOISE, LeadHistory, lead_history
from crmcore.serialization import structure, unstructure
from crmcore.testing.strategies import conditions

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def days_ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def reasons(exc: pytest.ExceptionInfo[ValidationError]) -> dict[str, str]:
    return {e.path: e.reason for e in exc.value.errors}


FIT = (
    PointsRule(name="software", condition=Field("industry") == "software", points=20),
    PointsRule(name="mid-size", condition=Field("company_size").between(200, 5000), points=15),
    PointsRule(name="decision maker", condition=Field("title").in_(["CEO", "CTO", "VP Sales"]), points=10),
    PointsRule(name="student", condition=Field("title") == "Student", points=-30),
)
BEHAVIOUR = (
    BehaviourRule(kind="email_opened", points=4, half_life_days=7, max_count=3),
    BehaviourRule(kind="demo_requested", points=40, half_life_days=30),
    BehaviourRule(kind="pricing_page_visited", points=10),
)
MODEL = PointsModel(rules=FIT, behaviour=BEHAVIOUR)


def lead(**kw: object) -> Lead:
    return Lead(name="Ada", **kw)  # type: ignore[arg-type]


# --- points model ------------------------------------------------------------------------------


def test_fit_points_add_up_exactly() -> None:
    """Fit rules add their points, negative ones subtract, and unmatched rules are not factors."""
    score = MODEL.score(lead(industry="software", company_size=400, title="CEO"), [], NOW)
    assert score.value == 45.0
    assert score.model == "points"
    assert [(f.name, f.contribution) for f in score.factors] == [
        ("software", 20.0),
        ("mid-size", 15.0),
        ("decision maker", 10.0),
    ]
    assert MODEL.score(lead(industry="software", title="Student"), [], NOW).value == -10.0
    assert MODEL.score(lead(), [], NOW) == Score(value=0.0, factors=(), model="points")


def test_behaviour_points_halve_every_half_life() -> None:
    """An activity one half-life old is worth half, two half-lives a quarter; no half-life, no decay."""
    activities = [
        Activity(kind="demo_requested", at=days_ago(0)),
        Activity(kind="demo_requested", at=days_ago(30)),
        Activity(kind="demo_requested", at=days_ago(60)),
        Activity(kind="pricing_page_visited", at=days_ago(365)),
    ]
    score = MODEL.score(lead(), activities, NOW)
    assert score.factor("demo_requested") is not None
    assert score.factor("demo_requested").contribution == 40 + 20 + 10  # type: ignore[union-attr]
    assert score.factor("pricing_page_visited").contribution == 10.0  # type: ignore[union-attr]
    assert score.value == 80.0


def test_decay_between_half_lives_is_exponential() -> None:
    """Half a half-life scales points by 1/sqrt(2), as the documented formula says."""
    score = MODEL.score(lead(), [Activity(kind="demo_requested", at=days_ago(15))], NOW)
    assert score.value == pytest.approx(40 / math.sqrt(2), rel=1e-12)


def test_max_count_keeps_the_most_recent_activities() -> None:
    """Only the max_count newest activities of a kind count, older ones add nothing."""
    opened = [Activity(kind="email_opened", at=days_ago(d)) for d in (70, 14, 0, 7, 28)]
    score = MODEL.score(lead(), opened, NOW)
    # the newest three: 0, 7 and 14 days old -> 4 + 2 + 1
    assert score.value == 7.0
    assert "the 3 most recent of 5 activities" in score.factors[0].detail


def test_future_and_unknown_activities_count_nothing() -> None:
    """Activities after now have not happened yet; kinds without a rule are ignored."""
    activities = [
        Activity(kind="demo_requested", at=NOW + timedelta(seconds=1)),
        Activity(kind="webinar_attended", at=days_ago(1)),
    ]
    assert MODEL.score(lead(), activities, NOW).value == 0.0
    # scoring as of a later day counts the demo
    assert MODEL.score(lead(), activities, NOW + timedelta(days=30, seconds=1)).value == 20.0


def test_factors_are_sorted_by_size_then_name() -> None:
    """Factors come largest |contribution| first, negative ones by their size, ties by name."""
    model = PointsModel(
        rules=(
            PointsRule(name="b", condition=All(), points=5),
            PointsRule(name="a", condition=All(), points=5),
            PointsRule(name="c", condition=All(), points=-9),
        ),
        behaviour=(BehaviourRule(kind="email_opened", points=1),),
    )
    score = model.score(lead(), [Activity(kind="email_opened", at=days_ago(1))], NOW)
    assert [f.name for f in score.factors] == ["c", "a", "b", "email_opened"]
    assert score.value == 2.0


def test_score_many_matches_score_one_by_one() -> None:
    """score_many gives each lead the score score() gives it, activities found by lead id."""
    leads = [
        lead(id="l1", industry="software", company_size=300),
        lead(id="l2", title="CTO"),
        lead(id="l3"),
    ]
    activities = {
        "l1": [Activity(kind="email_opened", at=days_ago(3))],
        "l3": [Activity(kind="demo_requested", at=days_ago(10))],
    }
    many = MODEL.score_many(leads, activities, NOW)
    assert many == [MODEL.score(x, activities.get(x.id, []), NOW) for x in leads]
    assert [s.value > 0 for s in many] == [True, True, True]


def test_points_model_refuses_bad_definitions_all_at_once() -> None:
    """Duplicate names and kinds and conditions that do not fit LEAD_FIELDS are reported together."""
    with pytest.raises(ValidationError) as exc:
        PointsModel(
            rules=(
                PointsRule(name="fit", condition=Field("industry") == "software", points=1),
                PointsRule(name="fit", condition=Field("employees") > 10, points=1),
                PointsRule(name="size", condition=Field("company_size") == "big", points=1),
            ),
            behaviour=(
                BehaviourRule(kind="email_opened", points=1),
                BehaviourRule(kind="email_opened", points=2),
            ),
        )
    problems = reasons(exc)
    assert set(problems) == {"rules[1].name", "rules[1].condition", "rules[2].condition", "behaviour[1].kind"}
    assert "also the name of rules[0]" in problems["rules[1].name"]
    assert "unknown field 'employees'" in problems["rules[1].condition"]
    assert "cannot be compared" in problems["rules[2].condition"]
    assert "already has a rule" in problems["behaviour[1].kind"]


def test_rules_refuse_bad_values() -> None:
    """Points out of range, non-positive half-lives, zero max counts and naive times are refused."""
    with pytest.raises(ValidationError) as exc:
        BehaviourRule(kind="", points=10**6, half_life_days=0, max_count=0)
    assert set(reasons(exc)) == {"kind", "points", "half_life_days", "max_count"}
    with pytest.raises(ValidationError, match="must be a condition"):
        PointsRule(name="x", condition="industry == 'software'", points=1)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="at least one rule"):
        PointsModel()
    with pytest.raises(ValidationError, match=r"^at: .*time zone"):
        Activity(kind="email_opened", at=datetime(2026, 1, 1))
    with pytest.raises(ValidationError, match="now"):
        MODEL.score(lead(), [], datetime(2026, 1, 1))


def test_points_model_round_trips() -> None:
    """A points model survives structure(unstructure(x)) and scores the same afterwards."""
    data = unstructure(MODEL)
    assert "_fit" not in data and "fit" not in data
    again = structure(data, PointsModel)
    assert again == MODEL
    x = lead(industry="software", title="CEO")
    acts = [Activity(kind="email_opened", at=days_ago(2))]
    assert again.score(x, acts, NOW) == MODEL.score(x, acts, NOW)


def test_stored_points_model_is_checked() -> None:
    """Structuring a points model with a bad condition raises the same checks as building one."""
    data = unstructure(MODEL)
    data["rules"][0]["condition"]["field"] = "employees"
    with pytest.raises(ValidationError, match="employees"):
        structure(data, PointsModel)


SAMPLE_LEADS = (
    lead(industry="software", company_size=300, title="CEO", source="web", region="emea", country="DE"),
    lead(industry="retail", company_size=5, campaign="spring", tags=("vip",), custom={"tier": 2}),
    lead(title="Student", last_touched_at=days_ago(3), assigned_at=days_ago(40)),
    lead(company="ACME", source="referral", company_size=10_000_000),
)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(conditions(4, fields=LEAD_FIELDS), st.integers(-100, 100)),
        min_size=1,
        max_size=5,
    )
)
def test_points_equal_a_sum_over_evaluate(rules: list[tuple[Condition, int]]) -> None:
    """On random conditions, a lead's points are the sum over rules that evaluate() says hold."""
    model = PointsModel(
        rules=tuple(
            PointsRule(name=f"r{i}", condition=cond, points=points) for i, (cond, points) in enumerate(rules)
        )
    )
    assert structure(unstructure(model), PointsModel) == model
    for x in SAMPLE_LEADS:
        expected = sum(p for cond, p in rules if evaluate(cond, x, LEAD_FIELDS, NOW))
        assert model.score(x, [], NOW).value == expected


@given(
    st.lists(
        st.builds(
            BehaviourRule,
            kind=st.sampled_from(["a", "b", "c", "d"]),
            points=st.integers(-50, 50),
            half_life_days=st.none() | st.floats(0.5, 400),
            max_count=st.none() | st.integers(1, 5),
        ),
        min_size=1,
        max_size=4,
        unique_by=lambda b: b.kind,
    ),
    st.lists(st.tuples(st.sampled_from(["a", "b", "e"]), st.floats(-10, 500)), max_size=12),
)
def test_behaviour_points_equal_the_documented_formula(
    behaviour: list[BehaviourRule], events: list[tuple[str, float]]
) -> None:
    """Behaviour points equal points * 0.5 ** (age / half-life), newest max_count per kind, past only."""
    model = PointsModel(behaviour=tuple(behaviour))
    assert structure(unstructure(model), PointsModel) == model
    activities = [Activity(kind=k, at=days_ago(d)) for k, d in events]
    score = model.score(lead(), activities, NOW)
    expected = 0.0
    for rule in behaviour:
        ages = sorted((NOW - a.at).total_seconds() / 86400 for a in activities if a.kind == rule.kind)
        ages = [age for age in ages if age >= 0][: rule.max_count]
        hl = rule.half_life_days
        expected += sum(rule.points * (1.0 if hl is None else 0.5 ** (age / hl)) for age in ages)
    assert score.value == pytest.approx(expected, abs=1e-9)
    assert all(f.name in {b.kind for b in behaviour} for f in score.factors)


# --- naive Bayes -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def history() -> LeadHistory:
    return lead_history(20_000, seed=42)


@pytest.fixture(scope="module")
def split(history: LeadHistory) -> tuple[NaiveBayesModel, Sequence[Lead], Sequence[bool]]:
    cut = 14_000
    model = NaiveBayesScorer().fit(history.leads[:cut], history.outcomes[:cut])
    return model, history.leads[cut:], history.outcomes[cut:]


def auc(scores: Sequence[float], outcomes: Sequence[bool]) -> float:
    """Area under the ROC curve by the Mann-Whitney rank-sum formula, ties given mean ranks."""
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    ranks = [0.0] * len(scores)
    i = 0
    while i < len(order):
        j = i
        while j < len(order) and scores[order[j]] == scores[order[i]]:
            j += 1
        for k in range(i, j):
            ranks[order[k]] = (i + j + 1) / 2  # mean of the 1-based ranks i+1 .. j
        i = j
    positives = sum(outcomes)
    negatives = len(outcomes) - positives
    rank_sum = sum(r for r, won in zip(ranks, outcomes, strict=True) if won)
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def test_auc_helper_on_hand_examples() -> None:
    """The AUC helper gives 1 for a perfect ranking, 0 for a reversed one and 0.5 for all ties."""
    assert auc([0.1, 0.2, 0.8, 0.9], [False, False, True, True]) == 1.0
    assert auc([0.9, 0.8, 0.2, 0.1], [False, False, True, True]) == 0.0
    assert auc([0.5, 0.5, 0.5, 0.5], [False, True, False, True]) == 0.5
    assert auc([0.1, 0.4, 0.35, 0.8], [False, False, True, True]) == 0.75


def test_held_out_auc_is_above_0_8(split: tuple[NaiveBayesModel, Sequence[Lead], Sequence[bool]]) -> None:
    """Trained on 70 % of a generated history, naive Bayes ranks the other 30 % with AUC > 0.8."""
    model, leads, outcomes = split
    scores = model.score_many(leads)
    assert len(scores) == len(leads)
    assert auc([s.value for s in scores], outcomes) > 0.8


def test_driving_fields_lead_the_factors(
    split: tuple[NaiveBayesModel, Sequence[Lead], Sequence[bool]],
) -> None:
    """The fields that drive the outcome top both the average |contribution| and informativeness."""
    model, leads, _ = split
    totals: dict[str, float] = {}
    for score in model.score_many(leads):
        for f in score.factors:
            totals[f.name] = totals.get(f.name, 0.0) + abs(f.contribution)
    ranked = sorted(totals, key=lambda name: -totals[name])
    assert set(ranked[:3]) == set(DRIVERS)
    assert set(NOISE) <= set(ranked[4:])
    informative = [f.name for f in model.informativeness()]
    assert set(informative[:3]) == set(DRIVERS)
    assert set(NOISE) <= set(informative[4:])


def test_top_factor_of_a_lead_is_a_driver(
    split: tuple[NaiveBayesModel, Sequence[Lead], Sequence[bool]],
) -> None:
    """For nearly every held-out lead, the first-listed factor is a driving field."""
    model, leads, _ = split
    firsts = [score.factors[0].name for score in model.score_many(leads)]
    assert sum(name in DRIVERS for name in firsts) / len(firsts) > 0.95


def test_probability_follows_base_and_factors(
    split: tuple[NaiveBayesModel, Sequence[Lead], Sequence[bool]],
) -> None:
    """value is the logistic function of base plus the factors' contributions, in (0, 1)."""
    model, leads, _ = split
    score = model.predict(leads[0])
    z = score.base + sum(f.contribution for f in score.factors)
    assert score.value == pytest.approx(1 / (1 + math.exp(-z)), rel=1e-12)
    assert 0 < score.value < 1
    assert score.base == pytest.approx(math.log(model.won / model.lost))
    assert score.model == "naive_bayes"
    assert [f.name for f in score.factors] == sorted(
        model.scorer.fields,
        key=lambda n: (-abs(score.factor(n).contribution), n),  # type: ignore[union-attr]
    )


def test_scoring_is_deterministic(history: LeadHistory) -> None:
    """The same history gives an equal model and identical scores, fitted twice."""
    first = NaiveBayesScorer().fit(history.leads[:5000], history.outcomes[:5000])
    second = NaiveBayesScorer().fit(history.leads[:5000], history.outcomes[:5000])
    assert first == second
    assert first.score_many(history.leads[5000:6000]) == second.score_many(history.leads[5000:6000])
    assert lead_history(50, seed=3) == lead_history(50, seed=3)


def test_unseen_values_still_get_a_probability(
    split: tuple[NaiveBayesModel, Sequence[Lead], Sequence[bool]],
) -> None:
    """A lead with values never seen in training gets a probability strictly between 0 and 1."""
    model, _, _ = split
    stranger = lead(
        industry="space mining", source="carrier pigeon", title="Admiral", country="AQ", region="moon"
    )
    score = model.predict(stranger)
    assert 0 < score.value < 1
    industry = score.factor("industry")
    assert industry is not None and "not seen in training" in industry.detail
    assert math.isfinite(industry.contribution)


def test_hand_counts_give_the_documented_ratios() -> None:
    """Log-likelihood ratios and the base rate match a hand computation with Laplace smoothing."""
    leads = [
        lead(industry="software"),
        lead(industry="software"),
        lead(industry="retail"),
        lead(industry="software"),
        lead(industry="retail"),
    ]
    outcomes = [True, True, True, False, False]
    model = NaiveBayesScorer(fields=("industry",)).fit(leads, outcomes)
    assert model.counts == (
        FieldCounts(field="industry", won={"retail": 1, "software": 2}, lost={"retail": 1, "software": 1}),
    )
    # 2 values + 1 unseen slot: P(software|won) = 3/6, P(software|lost) = 2/5
    score = model.predict(lead(industry="software"))
    assert score.factors[0].contribution == pytest.approx(math.log((3 / 6) / (2 / 5)))
    assert score.base == pytest.approx(math.log(3 / 2))
    z = math.log(3 / 2) + math.log((3 / 6) / (2 / 5))
    assert score.value == pytest.approx(1 / (1 + math.exp(-z)))
    assert score.factors[0].detail == "industry = 'software': won 2 of 3 training leads (67%)"
    unseen = model.predict(lead(industry="mining")).factors[0]
    assert unseen.contribution == pytest.approx(math.log((1 / 6) / (1 / 5)))


def test_integers_fall_into_bands_and_missing_is_a_value() -> None:
    """Company sizes are counted by band, missing sizes as a value of their own."""
    leads = [
        lead(company_size=5),
        lead(company_size=9),
        lead(company_size=10),
        lead(),
        lead(company_size=10**6),
    ]
    model = NaiveBayesScorer(fields=("company_size",), bands=(10, 100)).fit(
        leads, [True, True, False, False, True]
    )
    (counts,) = model.counts
    assert counts.won == {"< 10": 2, ">= 100": 1}
    assert counts.lost == {"": 1, "10-99": 1}
    assert model.predict(lead()).factors[0].detail.startswith("company_size not given: won 0 of 1")


def test_boolean_and_enum_fields_can_be_learned() -> None:
    """Enum fields (status) are counted by value."""
    leads = [lead(), lead().qualify(), lead().qualify()]
    model = NaiveBayesScorer(fields=("status",)).fit(leads, [False, True, True])
    assert model.counts[0].won == {"qualified": 2}
    assert model.predict(lead().qualify()).value > model.predict(lead()).value


def test_fit_refuses_unusable_training_data() -> None:
    """No data, one class only, mismatched or non-boolean outcomes each raise a clear error."""
    scorer = NaiveBayesScorer()
    with pytest.raises(ValidationError, match="no training data"):
        scorer.fit([], [])
    with pytest.raises(ValidationError, match="all 2 leads were won"):
        scorer.fit([lead(), lead()], [True, True])
    with pytest.raises(ValidationError, match="all 1 leads were lost"):
        scorer.fit([lead()], [False])
    with pytest.raises(ValidationError, match="has 1 entries for 2 leads"):
        scorer.fit([lead(), lead()], [True])
    with pytest.raises(ValidationError, match=r"outcomes\[1\] is 1"):
        scorer.fit([lead(), lead()], [True, 1])  # type: ignore[list-item]


def test_scorer_refuses_bad_configuration_all_at_once() -> None:
    """Unknown, unusable and repeated fields, a bad alpha and bad bands are reported together."""
    with pytest.raises(ValidationError) as exc:
        NaiveBayesScorer(fields=("industry", "employees", "tags", "industry"), alpha=0, bands=(50, 10))
    problems = reasons(exc)
    assert set(problems) == {"alpha", "bands", "fields[1]", "fields[2]", "fields[3]"}
    assert "unknown field 'employees'; usable fields: " in problems["fields[1]"]
    assert "company_size" in problems["fields[1]"]
    assert "text_list field" in problems["fields[2]"]
    assert "also fields[0]" in problems["fields[3]"]
    with pytest.raises(ValidationError, match="at least one field"):
        NaiveBayesScorer(fields=())


def test_models_round_trip(split: tuple[NaiveBayesModel, Sequence[Lead], Sequence[bool]]) -> None:
    """Scorer, fitted model and scores survive structure(unstructure(x)); a stored model scores alike."""
    model, leads, _ = split
    again = structure(unstructure(model), NaiveBayesModel)
    assert again == model
    assert again.score_many(leads[:200]) == model.score_many(leads[:200])
    scorer = NaiveBayesScorer(fields=("industry", "company_size"), alpha=0.5, bands=(5, 500), name="nb")
    assert structure(unstructure(scorer), NaiveBayesScorer) == scorer
    score = model.predict(leads[0])
    assert structure(unstructure(score), Score) == score


def test_stored_model_with_inconsistent_counts_is_refused(
    split: tuple[NaiveBayesModel, Sequence[Lead], Sequence[bool]],
) -> None:
    """A stored model whose counts do not add up to its totals cannot be loaded."""
    model, _, _ = split
    data = unstructure(model)
    data["won"] += 1
    data["counts"][0]["lost"]["web"] = 0
    with pytest.raises(ValidationError) as exc:
        structure(data, NaiveBayesModel)
    assert "counts[0].lost" in {e.path for e in exc.value.errors}
    data = unstructure(model)
    data["won"] += 1
    with pytest.raises(ValidationError) as exc:
        structure(data, NaiveBayesModel)
    assert {e.path for e in exc.value.errors} == {f"counts[{i}].won" for i in range(len(model.counts))}


@given(
    st.lists(
        st.builds(
            Score,
            value=st.floats(allow_nan=False, allow_infinity=False),
            factors=st.lists(
                st.builds(
                    Factor,
                    name=st.text(max_size=5),
                    contribution=st.floats(allow_nan=False, allow_infinity=False),
                    detail=st.text(max_size=10),
                ),
                max_size=3,
            ).map(tuple),
            model=st.sampled_from(["points", "naive_bayes"]),
            base=st.floats(allow_nan=False, allow_infinity=False),
        ),
        max_size=3,
    )
)
def test_scores_round_trip(scores: list[Score]) -> None:
    """Scores are plain data: any score survives structure(unstructure(x))."""
    assert structure(unstructure(scores), list[Score]) == scores
