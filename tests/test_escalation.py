"""Escalation rules: triggers, conditions, each action, first match wins, events, round trips."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crmcore.conditions import Field
from crmcore.customers.customer import Customer
from crmcore.errors import ValidationError
from crmcore.events import CustomerCreated, event_from_data, event_to_data
from crmcore.serialization import structure, unstructure
from crmcore.service.escalation import (
    PLACEHOLDERS,
    ActionKind,
    EscalationAction,
    EscalationNotice,
    EscalationRule,
    EscalationRules,
    EscalationTrigger,
    FieldChange,
    TicketEscalated,
    TriggerKind,
)
from crmcore.service.sla import (
    SLA_FIELDS,
    SlaBreached,
    SlaEvent,
    SlaMet,
    SlaMetric,
    SlaPolicies,
    SlaPolicy,
    SlaTarget,
    SlaWarning,
    sla_events,
)
from crmcore.service.ticket import Ticket, TicketPriority
from crmcore.testing.strategies import conditions

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
NOW = T0 + timedelta(hours=5)
BREACHED = EscalationTrigger(kind=TriggerKind.BREACHED)
WARNING = EscalationTrigger(kind=TriggerKind.WARNING)


def ticket(**kw: object) -> Ticket:
    fields: dict[str, object] = {
        "id": "t-1",
        "customer_id": "c-1",
        "subject": "Printer on fire",
        "created_at": T0,
        "assignee": "ana",
        "team": "support",
    }
    fields.update(kw)
    return Ticket(**fields)  # type: ignore[arg-type]


def event(
    cls: type[SlaEvent] = SlaBreached,
    metric: SlaMetric = SlaMetric.RESOLUTION,
    aggregate_id: str = "t-1",
) -> SlaEvent:
    return cls(
        aggregate_id=aggregate_id,
        occurred_at=T0 + timedelta(hours=4),
        metric=metric,
        cycle=f"{metric.value}@{T0.isoformat()}",
        policy="standard",
        version=1,
        due_at=T0 + timedelta(hours=4),
    )


def rules(
    *actions: EscalationAction, triggers: tuple[EscalationTrigger, ...] = (BREACHED,)
) -> EscalationRules:
    return EscalationRules(rules=(EscalationRule(name="r", triggers=triggers, actions=actions),))


# --- actions -----------------------------------------------------------------------------------


def test_reassign_to_user_and_team() -> None:
    """Reassigning to a user and a team sets both and lists both changes."""
    result = rules(EscalationAction.reassign(user="lead", team="tier2")).escalate(ticket(), event(), NOW)
    assert (result.ticket.assignee, result.ticket.team) == ("lead", "tier2")
    assert result.changes == (
        FieldChange(field="assignee", old="ana", new="lead"),
        FieldChange(field="team", old="support", new="tier2"),
    )


def test_reassign_to_team_alone_clears_the_assignee() -> None:
    """A team without a user puts the ticket in the team's queue (no assignee)."""
    result = rules(EscalationAction.reassign(team="tier2")).escalate(ticket(), event(), NOW)
    assert (result.ticket.assignee, result.ticket.team) == (None, "tier2")


def test_reassign_to_user_alone_keeps_the_team() -> None:
    """A user without a team changes only the assignee."""
    result = rules(EscalationAction.reassign(user="lead")).escalate(ticket(), event(), NOW)
    assert (result.ticket.assignee, result.ticket.team) == ("lead", "support")


def test_raise_priority_one_step_up() -> None:
    """raise_priority() moves the priority one step up."""
    result = rules(EscalationAction.raise_priority()).escalate(ticket(), event(), NOW)
    assert result.ticket.priority is TicketPriority.HIGH
    assert result.changes == (FieldChange(field="priority", old="normal", new="high"),)


@pytest.mark.parametrize(
    ("start", "to", "expected"),
    [
        (TicketPriority.URGENT, None, TicketPriority.URGENT),
        (TicketPriority.HIGH, TicketPriority.NORMAL, TicketPriority.HIGH),
        (TicketPriority.HIGH, TicketPriority.HIGH, TicketPriority.HIGH),
        (TicketPriority.LOW, TicketPriority.URGENT, TicketPriority.URGENT),
    ],
)
def test_raise_priority_never_lowers(
    start: TicketPriority, to: TicketPriority | None, expected: TicketPriority
) -> None:
    """Raising goes to the target only when it is higher; urgent stays urgent."""
    result = rules(EscalationAction.raise_priority(to)).escalate(ticket(priority=start), event(), NOW)
    assert result.ticket.priority is expected
    if expected is start:
        assert not result.changes and "never lowered" in result.reason


def test_add_tags_merges_with_existing_tags() -> None:
    """Tags are added to the ticket's tags, without repeats."""
    result = rules(EscalationAction.add_tags("escalated", "vip")).escalate(
        ticket(tags=("vip",)), event(), NOW
    )
    assert tuple(result.ticket.tags) == ("escalated", "vip")
    assert result.changes == (FieldChange(field="tags", old="vip", new="escalated, vip"),)


def test_notify_renders_the_message_and_resolves_recipients() -> None:
    """A notice goes to the resolved recipients with the placeholders filled in."""
    action = EscalationAction.notify(
        ["assignee", "team", "user:boss", "user:ana"],
        "{kind}: {metric} of {ticket_id} ({subject}) was due {due_at}, priority {priority}",
    )
    result = rules(action).escalate(ticket(), event(), NOW)
    escalated, notice = result.events
    assert isinstance(escalated, TicketEscalated) and escalated.changes == ()
    assert isinstance(notice, EscalationNotice)
    assert notice.recipients == ("user:ana", "team:support", "user:boss")
    assert notice.message == (
        "breached: resolution of t-1 (Printer on fire) was due 2026-03-02T13:00+00:00, priority normal"
    )
    assert result.ticket == ticket()


def test_notify_sees_the_ticket_after_earlier_actions() -> None:
    """Recipients and placeholders are resolved after the rule's earlier actions."""
    result = rules(
        EscalationAction.reassign(user="lead", team="tier2"),
        EscalationAction.raise_priority(),
        EscalationAction.notify(["assignee", "team"], "{assignee} now has it at {priority}"),
    ).escalate(ticket(), event(), NOW)
    notice = result.events[-1]
    assert isinstance(notice, EscalationNotice)
    assert notice.recipients == ("user:lead", "team:tier2")
    assert notice.message == "lead now has it at high"


def test_notify_assignee_when_there_is_none_is_skipped_with_a_reason() -> None:
    """'assignee' on an unassigned ticket is skipped and said so; other recipients still get it."""
    result = rules(EscalationAction.notify(["assignee", "team"], "late")).escalate(
        ticket(assignee=None), event(), NOW
    )
    notice = result.events[-1]
    assert isinstance(notice, EscalationNotice) and notice.recipients == ("team:support",)
    assert "assignee skipped: the ticket has none" in result.reason


def test_notify_with_no_recipient_left_drops_the_notice() -> None:
    """When no recipient resolves, no notice is recorded and the reason says so."""
    result = rules(EscalationAction.notify(["assignee"], "late")).escalate(
        ticket(assignee=None), event(), NOW
    )
    assert [type(e) for e in result.events] == [TicketEscalated]
    assert "notification dropped: no recipient" in result.reason


# --- matching ----------------------------------------------------------------------------------


def test_first_matching_rule_wins() -> None:
    """Of two matching rules only the first acts."""
    engine = EscalationRules(
        rules=(
            EscalationRule(name="first", triggers=(BREACHED,), actions=(EscalationAction.add_tags("one"),)),
            EscalationRule(name="second", triggers=(BREACHED,), actions=(EscalationAction.add_tags("two"),)),
        )
    )
    result = engine.escalate(ticket(), event(), NOW)
    assert result.rule == "first" and tuple(result.ticket.tags) == ("one",)
    assert engine.match(ticket(), event(), NOW) is engine.rules[0]


def test_triggers_select_by_kind_and_metric() -> None:
    """A trigger matches only its kind, and only its metric when it names one."""
    first_response_warning = EscalationTrigger(kind=TriggerKind.WARNING, metric=SlaMetric.FIRST_RESPONSE)
    engine = EscalationRules(
        rules=(
            EscalationRule(
                name="fr-warn", triggers=(first_response_warning,), actions=(EscalationAction.add_tags("a"),)
            ),
            EscalationRule(
                name="any-breach", triggers=(BREACHED,), actions=(EscalationAction.add_tags("b"),)
            ),
        )
    )
    assert engine.escalate(ticket(), event(SlaWarning, SlaMetric.FIRST_RESPONSE), NOW).rule == "fr-warn"
    assert engine.escalate(ticket(), event(SlaWarning, SlaMetric.RESOLUTION), NOW).rule is None
    assert engine.escalate(ticket(), event(SlaBreached, SlaMetric.FIRST_RESPONSE), NOW).rule == "any-breach"
    assert engine.escalate(ticket(), event(SlaBreached, SlaMetric.NEXT_RESPONSE), NOW).rule == "any-breach"


def test_no_match_leaves_the_ticket_and_says_why() -> None:
    """An event no rule takes changes nothing and records nothing."""
    result = rules(EscalationAction.add_tags("x")).escalate(ticket(), event(SlaWarning), NOW)
    assert result.rule is None and result.events == () and result.ticket == ticket()
    assert result.reason == "no escalation rule matches the resolution warning"


def test_met_events_do_not_escalate() -> None:
    """SlaMet never matches a rule."""
    engine = rules(EscalationAction.add_tags("x"), triggers=(BREACHED, WARNING))
    result = engine.escalate(ticket(), event(SlaMet), NOW)
    assert result.rule is None and result.events == ()
    assert "ticket.sla_met" in result.reason


def test_conditions_over_customer_tags() -> None:
    """A condition on customer_tags sees the customer passed in (no customer: empty tags)."""
    engine = EscalationRules(
        rules=(
            EscalationRule(
                name="vip",
                triggers=(BREACHED,),
                condition=Field("customer_tags").contains("vip"),
                actions=(EscalationAction.raise_priority("urgent"),),
            ),
        )
    )
    vip = Customer(id="c-1", name="Ada", tags=("vip",))
    plain = Customer(id="c-1", name="Bob")
    assert engine.escalate(ticket(), event(), NOW, vip).ticket.priority is TicketPriority.URGENT
    assert engine.escalate(ticket(), event(), NOW, plain).rule is None
    assert engine.escalate(ticket(), event(), NOW).rule is None


def test_escalated_event_describes_the_escalation() -> None:
    """TicketEscalated names the ticket, rule, trigger, metric, cycle and time; the reason lists changes."""
    ev = event()
    result = rules(EscalationAction.raise_priority()).escalate(ticket(), ev, NOW)
    escalated = result.events[0]
    assert isinstance(escalated, TicketEscalated)
    assert (escalated.aggregate_id, escalated.rule, escalated.trigger, escalated.metric) == (
        "t-1",
        "r",
        TriggerKind.BREACHED,
        SlaMetric.RESOLUTION,
    )
    assert escalated.cycle == ev.cycle and escalated.occurred_at == NOW
    assert result.reason == "rule 'r' escalates the resolution breach: priority normal -> high"


def test_events_round_trip_through_the_outbox_format() -> None:
    """Both events survive event_to_data / event_from_data."""
    result = rules(EscalationAction.raise_priority(), EscalationAction.notify(["team"], "{rule}")).escalate(
        ticket(), event(), NOW
    )
    for ev in result.events:
        assert event_from_data(ev.event_type, event_to_data(ev)) == ev
    assert [e.event_type for e in result.events] == ["ticket.escalated", "ticket.escalation_notice"]


def test_works_with_events_from_an_sla_report() -> None:
    """Events from sla_events escalate as built by hand ones do."""
    policies = SlaPolicies(
        policies=(SlaPolicy(name="standard", targets=(SlaTarget.hours("resolution", 4),)),)
    )
    t = policies.apply(ticket())
    events = sla_events(policies.evaluate(t, NOW), [])
    assert [type(e) for e in events] == [SlaWarning, SlaBreached]
    engine = rules(EscalationAction.raise_priority())
    assert engine.escalate(t, events[0], NOW).rule is None
    assert engine.escalate(t, events[1], NOW).ticket.priority is TicketPriority.HIGH


# --- refusals ----------------------------------------------------------------------------------


def test_naive_now_is_refused() -> None:
    """escalate refuses a naive now."""
    with pytest.raises(ValidationError) as err:
        rules(EscalationAction.raise_priority()).escalate(ticket(), event(), datetime(2026, 3, 2, 14))
    assert err.value.field == "now"


def test_event_for_another_ticket_is_refused() -> None:
    """An event about another ticket is refused, naming aggregate_id; with a naive now both are reported."""
    engine = rules(EscalationAction.raise_priority())
    with pytest.raises(ValidationError, match=r"event\.aggregate_id: is 't-2'"):
        engine.escalate(ticket(), event(aggregate_id="t-2"), NOW)
    with pytest.raises(ValidationError) as err:
        engine.escalate(ticket(), event(aggregate_id="t-2"), datetime(2026, 3, 2, 14))
    assert [e.path for e in err.value.errors] == ["now", "event.aggregate_id"]


def test_non_sla_event_is_refused() -> None:
    """Only SLA events can be escalated."""
    other = CustomerCreated(aggregate_id="t-1", occurred_at=T0, name="x")
    with pytest.raises(ValidationError, match="must be an SLA event"):
        rules(EscalationAction.raise_priority()).escalate(ticket(), other, NOW)  # type: ignore[arg-type]


def test_aware_now_in_any_zone_is_accepted() -> None:
    """A now with another offset is fine; events carry it in UTC."""
    later = NOW.astimezone(timezone(timedelta(hours=2)))
    result = rules(EscalationAction.raise_priority()).escalate(ticket(), event(), later)
    assert result.events[0].occurred_at == NOW and result.events[0].occurred_at.tzinfo is UTC


@pytest.mark.parametrize(
    ("message", "problem"),
    [
        ("{customer_name}", "{customer_name} is not a placeholder"),
        ("{}", "{} is not a placeholder"),
        ("{0}", "{0} is not a placeholder"),
        ("{subject.__class__}", "{subject.__class__} is not a placeholder"),
        ("{ticket_id[0]}", "{ticket_id[0]} is not a placeholder"),
        ("{subject!r}", "{subject} takes no format spec or conversion"),
        ("{due_at:%Y}", "{due_at} takes no format spec or conversion"),
        ("due {", "is not a valid template"),
        ("a } b", "is not a valid template"),
    ],
)
def test_bad_templates_are_refused_when_built(message: str, problem: str) -> None:
    """Unknown placeholders, attribute or index access, specs and stray braces are refused at build."""
    with pytest.raises(ValidationError, match="message: ") as err:
        EscalationAction.notify(["team"], message)
    assert problem in str(err.value)


def test_literal_braces_are_allowed() -> None:
    """Doubled braces render as literal braces."""
    result = rules(EscalationAction.notify(["team"], "{{{ticket_id}}}")).escalate(ticket(), event(), NOW)
    notice = result.events[-1]
    assert isinstance(notice, EscalationNotice) and notice.message == "{t-1}"


def test_every_placeholder_renders() -> None:
    """Every name in PLACEHOLDERS renders to a string."""
    message = " ".join(f"{{{name}}}" for name in PLACEHOLDERS)
    result = rules(EscalationAction.notify(["team"], message)).escalate(ticket(), event(), NOW)
    notice = result.events[-1]
    assert isinstance(notice, EscalationNotice)
    assert notice.message.split() == [
        "ana", "c-1", "2026-03-02T13:00+00:00", "breached", "resolution", "standard", "normal", "r",
        "Printer", "on", "fire", "support", "t-1",
    ]  # fmt: skip


def test_actions_refuse_fields_of_other_kinds_and_missing_ones() -> None:
    """Each kind reports fields it does not use and the fields it needs, all at once."""
    with pytest.raises(ValidationError) as err:
        EscalationAction(kind=ActionKind.NOTIFY, user="u", priority=TicketPriority.HIGH)
    assert {str(e) for e in err.value.errors} == {
        "user: is not used by a 'notify' action",
        "priority: is not used by a 'notify' action",
        "recipients: must name at least one recipient",
        "message: is required",
    }
    with pytest.raises(ValidationError, match="user: or team is required"):
        EscalationAction.reassign()
    with pytest.raises(ValidationError, match="tags: must hold at least one tag"):
        EscalationAction.add_tags()


def test_bad_recipients_are_refused() -> None:
    """Recipients must be 'assignee', 'team', 'user:<id>' or 'team:<id>'."""
    with pytest.raises(ValidationError) as err:
        EscalationAction.notify(["boss", "user:", "group:x", "team:ok"], "hi")
    assert [e.path for e in err.value.errors] == ["recipients[0]", "recipients[1]", "recipients[2]"]


def test_rules_report_every_problem_at_once() -> None:
    """A rule lists missing triggers, missing actions and a bad condition together; names must be unique."""
    with pytest.raises(ValidationError) as err:
        EscalationRule(name="r", triggers=(), actions=(), condition=Field("nope") == 1)
    assert [e.path for e in err.value.errors] == ["triggers", "actions", "condition"]
    rule = EscalationRule(name="r", triggers=(BREACHED,), actions=(EscalationAction.add_tags("x"),))
    with pytest.raises(ValidationError, match=r"rules\[2\].name: 'r' is used by an earlier rule"):
        EscalationRules(rules=(rule, renamed(rule, "s"), rule))


def renamed(rule: EscalationRule, name: str) -> EscalationRule:
    return EscalationRule(name=name, triggers=rule.triggers, actions=rule.actions)


def test_structuring_bad_data_lists_every_bad_path() -> None:
    """Rules built from data report each bad action and trigger with its path."""
    data = {
        "rules": [
            {
                "name": "r",
                "triggers": [{"kind": "late"}],
                "actions": [{"kind": "notify", "recipients": ["team"], "message": "{oops}"}],
            }
        ]
    }
    with pytest.raises(ValidationError) as err:
        structure(data, EscalationRules)
    paths = {e.path for e in err.value.errors}
    assert paths == {"rules[0].triggers[0].kind", "rules[0].actions[0].message"}


# --- round trip --------------------------------------------------------------------------------

_IDS = st.sampled_from(["ana", "lead", "tier2", "u-7"])
_ACTIONS = st.one_of(
    st.tuples(st.none() | _IDS, st.none() | _IDS)
    .filter(lambda ut: ut != (None, None))
    .map(lambda ut: EscalationAction.reassign(user=ut[0], team=ut[1])),
    st.builds(EscalationAction.raise_priority, st.none() | st.sampled_from(TicketPriority)),
    st.lists(st.sampled_from(["vip", "escalated", "late"]), min_size=1, max_size=3).map(
        lambda tags: EscalationAction.add_tags(*tags)
    ),
    st.builds(
        EscalationAction.notify,
        st.lists(st.sampled_from(["assignee", "team", "user:ana", "team:tier2"]), min_size=1, max_size=4),
        st.lists(
            st.sampled_from([*(f"{{{p}}}" for p in PLACEHOLDERS), "late", "{{x}}", " "]), min_size=1
        ).map(lambda parts: "x" + "".join(parts)),
    ),
)


@st.composite
def escalation_rules(draw: st.DrawFn) -> EscalationRules:
    names = draw(st.lists(st.sampled_from(["a", "b", "c", "vip breach"]), unique=True, max_size=3))
    return EscalationRules(
        rules=tuple(
            EscalationRule(
                name=name,
                triggers=tuple(
                    draw(
                        st.lists(
                            st.builds(
                                EscalationTrigger,
                                kind=st.sampled_from(TriggerKind),
                                metric=st.none() | st.sampled_from(SlaMetric),
                            ),
                            min_size=1,
                            max_size=2,
                        )
                    )
                ),
                condition=draw(st.none() | conditions(3, fields=SLA_FIELDS)),
                actions=tuple(draw(st.lists(_ACTIONS, min_size=1, max_size=3))),
            )
            for name in names
        )
    )


@given(escalation_rules())
def test_rules_round_trip(engine: EscalationRules) -> None:
    """structure(unstructure(rules)) == rules for any valid rules."""
    assert structure(unstructure(engine), EscalationRules) == engine
