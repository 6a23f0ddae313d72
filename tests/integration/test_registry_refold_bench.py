"""The short form of ``python -m bench.registry_refold`` (issue 14's alias refold): on a small
log, an alias added for a labelled side folds again only the labelled places (besides the
places of appends the group committer put in the same commit), and a rebuild gives the rows
the appends and the edit wrote. No timing is asserted: the figures are the bench's."""

from __future__ import annotations

import asyncio

from bench.registry_refold import measure, parser


def test_the_alias_refolds_the_labelled_places_only_and_a_rebuild_agrees(
    fresh_db: str,
) -> None:
    """Every labelled place's timeline changes at the edit (two sides became one), no other
    place's rows change there, appends went on before, during and after it, and the rebuild
    equals the incremental rows."""
    args = parser().parse_args(
        ["--places", "12", "--claims", "3", "--others", "5", "--posters", "2", "--window", "0.3"]
    )
    figures = asyncio.run(measure(fresh_db, args))
    assert figures["alias_places_changed"] == 12
    assert figures["only_labelled_places_changed"] is True
    assert figures["labelled_claims"] == 36
    assert figures["quiet_posts"] > 0
    assert figures["window_posts"] > 0
    assert figures["rebuild_equals_incremental"] is True
    assert figures["rebuild_events"] >= figures["log_events"]
