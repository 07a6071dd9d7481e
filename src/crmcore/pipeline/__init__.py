"""Sales pipeline: leads, opportunities, pipelines with stage rules, conversion, scoring, quotes."""

from crmcore.pipeline.lead import LEAD_FIELDS, Lead, LeadStatus
from crmcore.pipeline.opportunity import (
    OPPORTUNITY_FIELDS,
    ForecastCategory,
    LineItem,
    Opportunity,
    StageChange,
)

__all__ = [
    "ForecastCategory",
    "LEAD_FIELDS",
    "Lead",
    "LeadStatus",
    "LineItem",
    "OPPORTUNITY_FIELDS",
    "Opportunity",
    "StageChange",
]
