"""Casualty claims side by side (service/domain/casualties.py): incidents from links, the
spread of best figures (never an average), force from withdrawals, violations named."""

from __future__ import annotations

from contracts.events import Casualties, Event
from service.domain.casualties import StoredReport, in_force, incidents
from service.domain.projection import in_force as fold_in_force
from tests.unit.builders import (
    casualties,
    clash,
    event,
    link,
    retraction,
    source,
    statement,
)


def stored(*events: Event) -> list[StoredReport]:
    """The events as the log would hold them, at positions 1, 2, 3 ..."""
    return [StoredReport(position, e) for position, e in enumerate(events, start=1)]


def test_linked_reports_are_one_incident_with_the_spread_of_their_best_figures() -> None:
    """Five outlets on one incident (12, 15, 9, 21, 14), the later four confirming the
    first: one incident listing all five, spread 9..21 over five sources, no average."""
    first = casualties(12, by=source("Reuters"))
    others = [
        casualties(n, by=source(name), links=[link(first, "confirms")])
        for n, name in ((15, "SOHR"), (9, "SANA"), (21, "Amaq"), (14, "ANHA"))
    ]
    [incident] = incidents(stored(first, *others))
    assert incident.incident == first.id
    assert incident.first == 1
    assert [c.killed for c in incident.claims] == [12, 15, 9, 21, 14]
    assert (incident.spread.min_killed, incident.spread.max_killed) == (9, 21)
    assert (incident.spread.claims, incident.spread.sources) == (5, 5)
    assert [c.relates_to[0].relation for c in incident.claims[1:]] == ["confirms"] * 4


def test_unlinked_reports_are_incidents_of_their_own_in_position_order() -> None:
    """Two unlinked figures are two incidents, listed by their first event's position."""
    a, b = casualties(3), casualties(4, by=source("SOHR"))
    assert [i.claims[0].killed for i in incidents(stored(a, b))] == [3, 4]


def test_a_link_through_another_event_joins_the_incident() -> None:
    """A statement confirming two reports ties them into one incident; the statement itself
    carries no figures and is not a claim."""
    a, b = casualties(3), casualties(7, by=source("SOHR"))
    tie = statement(link(a, "confirms"), link(b, "confirms"), by=source("Reuters"))
    [incident] = incidents(stored(a, b, tie))
    assert [c.killed for c in incident.claims] == [3, 7]
    assert incident.incident == a.id


def test_a_retracted_claim_stays_listed_out_of_force_and_out_of_the_spread() -> None:
    """Its own source's retraction takes a claim out of force: listed, marked, not counted
    in the spread; a retraction of that retraction restores it (as the projection says)."""
    first = casualties(10, by=source("Reuters"))
    high = casualties(40, by=source("Amaq"), links=[link(first, "confirms")])
    pulled = retraction(high)
    [incident] = incidents(stored(first, high, pulled))
    assert [(c.killed, c.in_force) for c in incident.claims] == [(10, True), (40, False)]
    assert (incident.spread.min_killed, incident.spread.max_killed) == (10, 10)
    restored = retraction(pulled)
    reports = stored(first, high, pulled, restored)
    assert in_force(reports) == fold_in_force(r.event for r in reports)
    [again] = incidents(reports)
    assert (again.spread.max_killed, again.spread.claims) == (40, 2)


def test_figures_breaking_their_bounds_are_listed_as_given_and_named() -> None:
    """low 40 > killed 30: kept as given, the violation named and counted."""
    bad = event("casualties", casualties=Casualties(killed=30, low=40, high=55))
    [incident] = incidents(stored(bad))
    [claim] = incident.claims
    assert (claim.low, claim.killed, claim.high) == (40, 30, 55)
    assert claim.violations == ["casualties.low exceeds casualties.killed"]
    assert incident.violations == 1


def test_an_event_of_another_type_with_figures_is_a_claim_and_listed_filters() -> None:
    """A clash carrying casualties is a claim too; ``listed`` leaves claims out of the
    answer (a range query) without splitting incidents."""
    fight = clash("isis", casualties=Casualties(killed=5))
    report = casualties(6, by=source("SOHR"), links=[link(fight, "confirms")], on="2017-06-04")
    [incident] = incidents(stored(fight, report))
    assert [c.type for c in incident.claims] == ["clash", "casualties"]
    [only] = incidents(stored(fight, report), lambda r: r.event.occurred.start == "2017-06-04")
    assert only.incident == fight.id
    assert [c.killed for c in only.claims] == [6]
