"""Lead scoring: a points model with decaying behaviour points, and naive Bayes trained on history.

Both models return a `Score` listing each `Factor`'s contribution; both re-score many leads in
one call (``score_many``). See docs/lead_scoring.md.
"""

from crmcore.pipeline.scoring.naive_bayes import (
    DEFAULT_BANDS,
    DEFAULT_FIELDS,
    FieldCounts,
    NaiveBayesModel,
    NaiveBayesScorer,
)
from crmcore.pipeline.scoring.points import Activity, BehaviourRule, PointsModel, PointsRule
from crmcore.pipeline.scoring.score import Factor, Score

__all__ = [
    "Activity",
    "BehaviourRule",
    "DEFAULT_BANDS",
    "DEFAULT_FIELDS",
    "Factor",
    "FieldCounts",
    "NaiveBayesModel",
    "NaiveBayesScorer",
    "PointsModel",
    "PointsRule",
    "Score",
]
