"""Rule 8: the status of a place at an instant, from the encirclements and contests open then.

An encirclement lasts from its start until the first in-force capture (by any side) or
siege lifted starting at or after it; a clash or counter-attack, its own interval. Contested
wins over encircled; a side does not besiege a place it holds, nor contest itself (a clash
whose side and opponent are one side); with no controller and neither, the place is unknown.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import TypeAlias

from contracts.timeline import Status
from service.domain.projection.claims import Side

Contest: TypeAlias = tuple[datetime, str, Side, uuid.UUID]
"""An open clash or counter-attack: its end, its side, its opponent, its event."""
Siege: TypeAlias = tuple[str, uuid.UUID]
"""An open encirclement: its side, its event."""


def status_of(
    controller: Side, contesting: Sequence[Contest], encircling: Sequence[Siege]
) -> tuple[Status, Side, tuple[uuid.UUID, ...]]:
    """The status, the side driving it, and the events driving it (unsorted).

    A clash names its ``side`` as the contesting side, or its ``opponent`` when the side is the
    controller itself ("the army clashed with ISIS in an army-held town" is contested by
    isis). When several sides qualify, a side other than the controller comes first, then
    alphabetical order.
    """
    # A side never contests itself: a clash whose side and opponent are one side (two of
    # its names, read through the side registry) contests nothing.
    contesting = [contest for contest in contesting if contest[1] != contest[2]]
    if contesting:
        contenders = []
        for _, side, opponent, _ in contesting:
            if side == controller and opponent is not None:
                contenders.append(opponent)
            else:
                contenders.append(side)
        by = min(contenders, key=lambda s: (s == controller, s))
        return "contested", by, tuple(event for *_, event in contesting)
    besiegers = [(side, event) for side, event in encircling if side != controller]
    if besiegers:
        by = min(side for side, _ in besiegers)
        return "encircled", by, tuple(event for _, event in besiegers)
    return ("controlled" if controller is not None else "unknown"), None, ()
