"""The net form of the front's changes: each place's reading before and after a range. Pure."""

from __future__ import annotations

from collections.abc import Iterable

from contracts.front import NetChange, Transition
from service.domain.history import changed_fields


def net_changes(items: Iterable[Transition]) -> list[NetChange]:
    """Each place's transitions (in place then valid-time order, as the every-transition form
    lists them) reduced to one: the segment before the first and the segment after the last.
    A place whose reading is the same at both ends (it changed and changed back) is left out.
    """
    by_place: dict[str, list[Transition]] = {}
    for item in items:
        by_place.setdefault(item.place.id, []).append(item)
    answer = []
    for steps in by_place.values():
        first, last = steps[0], steps[-1]
        changed = changed_fields(first.before, last.after)
        if not changed:
            continue
        answer.append(
            NetChange(
                place=last.place,
                first_at=first.at,
                last_at=last.at,
                transitions=len(steps),
                changed=changed,
                before=first.before,
                after=last.after,
            )
        )
    return answer
