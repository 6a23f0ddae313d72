"""The registries of sides and sources: which names are one side, which names are one
source and how it is graded, as known at a position of the log. Pure.

Every change of the registry is a ``side_registered`` event in the log (DESIGN section 8),
in the side's own stream (``side:<id>``): it states the side's whole entry (name, kind,
colour, aliases), and replaces the previous one from its position on. The registry as known
at position K is what the ``side_registered`` events up to K state; an answer as known at K
reads the events through it, so an alias applies to every answer known at or after its
position (earlier valid times included) and to none known before it.

Aliases point straight at a registered side: a name is either a registered side's id, or
the alias of exactly one side, or unknown (it then stands for itself). An alias can never be
another side's id, so there are no chains, and :meth:`SideRegistry.canonical` is one lookup.
A side alias applies to an event's ``side``, ``opponent`` and ``source.alignment`` alike
(:meth:`SideRegistry.canonical_fact`), and to the casualties' ``side``.

The source registry works the same way, in streams ``source:<key>`` (a source's key is its
name without case or white space): a ``source_registered`` event states a source's grade
(``reliability``), ``alignment`` and aliases. Every claim of a registered source, under its
name or an alias, is scored with the grade and alignment the registry holds as known at the
answer's position, whatever the event itself states: a re-grading applies from its position
on (to claims about earlier valid times too) and never to answers known before it; the
events stay as they were said.
"""

from __future__ import annotations

import uuid
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

import msgspec

from contracts.events import (
    PLACE_STREAM,
    SIDE_STREAM,
    SOURCE_STREAM,
    PlaceMerged,
    PlaceMergeRetracted,
    RegistryEvent,
    SideRegistered,
    SourceRegistered,
)
from contracts.registry import PlaceMergeEntry, SideEntry, SourceEntry
from service.domain.errors import FrontlineError, InvalidEvent
from service.domain.policy import NEUTRAL
from service.domain.projection.facts import Fact
from service.domain.records import source_key

#: The path ``GET /v1/sides/unmapped`` lists the unmapped sides under: no side may take it.
UNMAPPED: Final = "unmapped"

#: Names no side may take: ``neutral`` is what a source's alignment says when it leans to
#: no side; ``unmapped`` names the list of the names no entry knows.
RESERVED: Final = frozenset({NEUTRAL, UNMAPPED})


class AliasTaken(FrontlineError):
    """A registry edit that would make one name mean two sides. Answered with 409."""

    def __init__(self, detail: str, *, name: str, owner: str, field: str) -> None:
        super().__init__(detail, field=field)
        self.name = name
        self.owner = owner


class MergeRefused(FrontlineError):
    """A merge or unmerge that does not fit the merges in force (a chain, a cycle, a place
    merged twice, an unmerge of no merge). Answered with 409 naming the field."""


def place_stream(merged: str) -> str:
    """The id of a merged place's registry stream (its merges and their retractions)."""
    return PLACE_STREAM + merged


#: How a place whose timeline a merge changes is named among remapped names.
PLACE_MARK: Final = PLACE_STREAM


def side_stream(side: str) -> str:
    """The id of a side's registry stream in the log (its ``place_id`` column)."""
    return SIDE_STREAM + side


def source_stream(name: str) -> str:
    """The id of a source's registry stream (``source:`` and the source's key)."""
    return SOURCE_STREAM + source_key(name)


#: How a remapped source key is named among remapped side names (they share one set).
SOURCE_MARK: Final = "source:"


def is_registry_stream(stream: str) -> bool:
    """Whether a stream of the log is a registry's rather than a place's."""
    return ":" in stream


class SideRegistry:
    """The side registry at one position: entries by id, and every alias's side.

    Immutable once built; :meth:`stated` gives the registry after one more event.
    """

    __slots__ = (
        "_absorbed",
        "_alias",
        "_source_alias",
        "entries",
        "merges",
        "place_streams",
        "position",
        "sources",
    )

    def __init__(
        self,
        entries: Mapping[str, SideEntry] | None = None,
        position: int = 0,
        sources: Mapping[str, SourceEntry] | None = None,
        merges: Mapping[str, PlaceMergeEntry] | None = None,
        place_streams: Mapping[str, int] | None = None,
    ) -> None:
        self.entries: dict[str, SideEntry] = dict(entries or {})
        """Sides by id."""
        self.sources: dict[str, SourceEntry] = dict(sources or {})
        """Sources by key."""
        self.position = position
        """The last position this registry has read (the registry as known at it)."""
        self._alias: dict[str, str] = {
            alias: entry.side for entry in self.entries.values() for alias in entry.aliases
        }
        self._source_alias: dict[str, str] = {
            source_key(alias): entry.key
            for entry in self.sources.values()
            for alias in entry.aliases
        }
        self.merges: dict[str, PlaceMergeEntry] = dict(merges or {})
        """The merges in force, by the merged place."""
        self.place_streams: dict[str, int] = dict(place_streams or {})
        """The version of every place registry stream (``place:<merged>``), by merged place."""
        self._absorbed: dict[str, tuple[str, ...]] = {}
        for merge in sorted(self.merges.values(), key=lambda m: m.merged):
            self._absorbed[merge.place] = (*self._absorbed.get(merge.place, ()), merge.merged)

    # --- places (merges) ---

    def place_of(self, place: str) -> str:
        """The place whose timeline the events about ``place`` belong to: the place it is
        merged into, or itself."""
        merge = self.merges.get(place)
        return place if merge is None else merge.place

    def absorbed(self, place: str) -> tuple[str, ...]:
        """The places merged into ``place`` (in id order)."""
        return self._absorbed.get(place, ())

    def timeline_streams(self, place: str) -> tuple[str, ...]:
        """The place streams whose events make ``place``'s timeline: none for a place
        merged into another, else itself and the places merged into it."""
        if place in self.merges:
            return ()
        return (place, *self.absorbed(place))

    def check_merge(self, event: PlaceMerged | PlaceMergeRetracted, where: str = "") -> None:
        """Refuse a merge that would chain or loop, or merge a place twice; an unmerge of a
        merge that is not in force. MergeRefused (409) naming the field."""
        if isinstance(event, PlaceMergeRetracted):
            merge = self.merges.get(event.merged)
            if merge is None or merge.place != event.place:
                raise MergeRefused(
                    f"place {event.merged!r} is not merged into {event.place!r}: "
                    "there is no merge to retract",
                    field=where + "merged",
                )
            if uuid.UUID(merge.id) != event.retracts:
                raise MergeRefused(
                    f"the merge of {event.merged!r} into {event.place!r} in force is event "
                    f"{merge.id}, not {event.retracts}",
                    field=where + "retracts",
                )
            return
        place, merged = event.place, event.merged
        if place == merged:
            raise InvalidEvent(
                f"a place cannot be merged into itself ({place!r})", field=where + "merged"
            )
        already = self.merges.get(merged)
        if already is not None:
            raise MergeRefused(
                f"place {merged!r} is already merged into {already.place!r}: unmerge it first",
                field=where + "merged",
            )
        target = self.merges.get(place)
        if target is not None:
            raise MergeRefused(
                f"place {place!r} is itself merged into {target.place!r}: merge {merged!r} "
                f"into {target.place!r} instead (merges do not chain)",
                field=where + "place",
            )
        if self.absorbed(merged):
            raise MergeRefused(
                f"places are merged into {merged!r} ({', '.join(self.absorbed(merged))}): "
                f"merge them into {place!r} or unmerge them first (merges do not chain)",
                field=where + "merged",
            )

    def merges_changed(self, later: SideRegistry) -> frozenset[str]:
        """The places whose timeline ``later``'s merges make otherwise than this registry's:
        the places merged or unmerged, and the places they went into or came out of."""
        changed: set[str] = set()
        for merged in self.merges.keys() | later.merges.keys():
            before, after = self.merges.get(merged), later.merges.get(merged)
            if (before and before.place) != (after and after.place):
                changed.add(merged)
                changed.update(m.place for m in (before, after) if m is not None)
        return frozenset(changed)

    def canonical(self, name: str) -> str:
        """The registered side a name stands for: itself when it is no alias."""
        return self._alias.get(name, name)

    def owner(self, name: str) -> str | None:
        """The side that registered ``name`` as its id or an alias, or None."""
        if name in self.entries:
            return name
        return self._alias.get(name)

    def kind_of(self, name: str) -> str | None:
        """The registered kind (``state_force``, ...) of the side ``name`` stands for, or
        None when the registry does not know it."""
        entry = self.entries.get(self.canonical(name))
        return None if entry is None else entry.kind

    def source_of(self, name: str) -> SourceEntry | None:
        """The registered source a name (or its key) stands for, or None."""
        key = source_key(name)
        return self.sources.get(self._source_alias.get(key, key))

    def canonical_fact(self, fact: Fact) -> Fact:
        """The fact read through the registry: a registered source's key, name, grade and
        alignment for the event's own; its side, opponent and alignment as the sides they
        name. The same object when nothing applies (most facts, and every fact of an empty
        registry)."""
        if self.sources:
            key = fact.source
            entry = self.sources.get(self._source_alias.get(key, key))
            if entry is not None and (
                entry.key != key
                or entry.reliability != fact.reliability
                or entry.alignment != fact.alignment
                or entry.source != fact.source_name
            ):
                fact = msgspec.structs.replace(
                    fact,
                    source=entry.key,
                    source_name=entry.source,
                    reliability=entry.reliability,
                    alignment=entry.alignment,
                )
        alias = self._alias
        if not alias:
            return fact
        side = alias.get(fact.side, fact.side) if fact.side is not None else None
        opponent = alias.get(fact.opponent, fact.opponent) if fact.opponent is not None else None
        alignment = alias.get(fact.alignment, fact.alignment)
        if side is fact.side and opponent is fact.opponent and alignment is fact.alignment:
            return fact
        return msgspec.structs.replace(fact, side=side, opponent=opponent, alignment=alignment)

    def check_source(self, event: SourceRegistered, where: str = "") -> None:
        """Refuse a source entry that would make a name mean two sources: AliasTaken (409)
        when the source's name is another source's alias, or an alias is another source's
        name or alias; InvalidEvent for an alias given twice or the source's own name."""
        key = source_key(event.source)
        owner = self._source_alias.get(key)
        if owner is not None and owner != key:
            raise AliasTaken(
                f"{event.source!r} is already an alias of source "
                f"{self.sources[owner].source!r}: register it under another name, or remove "
                "the alias first",
                name=event.source,
                owner=owner,
                field=where + "source",
            )
        seen: set[str] = set()
        for index, alias in enumerate(event.aliases):
            field = f"{where}aliases[{index}]"
            alias_key = source_key(alias)
            if alias_key == key:
                raise InvalidEvent(
                    f"{alias!r} is the source's own name (case and spacing aside), not an alias",
                    field=field,
                )
            if alias_key in seen:
                raise InvalidEvent(
                    f"alias {alias!r} is given twice (case and spacing aside)", field=field
                )
            seen.add(alias_key)
            taken = alias_key if alias_key in self.sources else self._source_alias.get(alias_key)
            if taken is not None and taken != key:
                what = (
                    "a registered source"
                    if taken == alias_key
                    else f"an alias of source {self.sources[taken].source!r}"
                )
                raise AliasTaken(
                    f"alias {alias!r} is already {what}: one name means one source",
                    name=alias,
                    owner=taken,
                    field=field,
                )

    def check_side(self, event: SideRegistered, where: str = "") -> None:
        """Refuse an entry that would make a name mean two sides, or take a reserved name.

        InvalidEvent for a reserved name or an alias given twice; AliasTaken (409) when the
        side's id is another side's alias, or an alias is another side's id or alias.
        """
        side = event.side
        if side in RESERVED:
            raise InvalidEvent(f"{side!r} is reserved: no side may take it", field=where + "side")
        owner = self._alias.get(side)
        if owner is not None and owner != side:
            raise AliasTaken(
                f"{side!r} is already an alias of side {owner!r}: register the side under "
                f"another id, or remove the alias from {owner!r} first",
                name=side,
                owner=owner,
                field=where + "side",
            )
        seen: set[str] = set()
        for index, alias in enumerate(event.aliases):
            field = f"{where}aliases[{index}]"
            if alias in RESERVED:
                raise InvalidEvent(f"{alias!r} is reserved: no side may take it", field=field)
            if alias == side:
                raise InvalidEvent(f"{alias!r} is the side's own id, not an alias", field=field)
            if alias in seen:
                raise InvalidEvent(f"alias {alias!r} is given twice", field=field)
            seen.add(alias)
            taken = self.owner(alias)
            if taken is not None and taken != side:
                what = "a registered side" if taken == alias else f"an alias of side {taken!r}"
                raise AliasTaken(
                    f"alias {alias!r} is already {what}: one name means one side",
                    name=alias,
                    owner=taken,
                    field=field,
                )

    def stated(
        self,
        event: RegistryEvent,
        *,
        version: int,
        position: int,
        submitter: str | None,
    ) -> SideRegistry:
        """The registry once ``event`` (checked) is in the log at ``position``."""
        if isinstance(event, PlaceMerged | PlaceMergeRetracted):
            merges = dict(self.merges)
            if isinstance(event, PlaceMerged):
                merges[event.merged] = PlaceMergeEntry(
                    place=event.place,
                    merged=event.merged,
                    id=str(event.id),
                    version=version,
                    position=position,
                    submitter=submitter,
                )
            else:
                merges.pop(event.merged, None)
            streams = {**self.place_streams, event.merged: version}
            return SideRegistry(
                self.entries, max(self.position, position), self.sources, merges, streams
            )
        if isinstance(event, SourceRegistered):
            key = source_key(event.source)
            sources = dict(self.sources)
            sources[key] = SourceEntry(
                source=event.source,
                key=key,
                reliability=event.reliability,
                alignment=event.alignment,
                aliases=tuple(sorted(event.aliases)),
                url=event.url,
                version=version,
                position=position,
                submitter=submitter,
            )
            return SideRegistry(
                self.entries,
                max(self.position, position),
                sources,
                self.merges,
                self.place_streams,
            )
        entries = dict(self.entries)
        entries[event.side] = SideEntry(
            side=event.side,
            name=event.name,
            kind=event.kind,
            colour=event.colour,
            aliases=tuple(sorted(event.aliases)),
            version=version,
            position=position,
            submitter=submitter,
        )
        return SideRegistry(
            entries, max(self.position, position), self.sources, self.merges, self.place_streams
        )

    def check(self, event: RegistryEvent, where: str = "") -> None:
        """Refuse an entry that would make a name mean two sides or two sources (or take a
        reserved name), or a merge that does not fit: see :meth:`check_side`,
        :meth:`check_source` and :meth:`check_merge`."""
        if isinstance(event, PlaceMerged | PlaceMergeRetracted):
            self.check_merge(event, where)
        elif isinstance(event, SourceRegistered):
            self.check_source(event, where)
        else:
            self.check_side(event, where)

    def remapped(self, later: SideRegistry) -> frozenset[str]:
        """What ``later`` reads otherwise than this registry: the side names it reads as
        another side, and (marked ``source:``) the source keys whose source, grade or
        alignment differ. The places whose events use one of them must be folded again."""
        names = self._alias.keys() | later._alias.keys()
        sides = {n for n in names if self.canonical(n) != later.canonical(n)}
        keys = (
            self._source_alias.keys()
            | later._source_alias.keys()
            | self.sources.keys()
            | later.sources.keys()
        )
        sources = {
            SOURCE_MARK + k for k in keys if self._source_reading(k) != later._source_reading(k)
        }
        # A source's registered alignment is a side name too: the sources aligned with a
        # remapped name (under any of their names) score differently.
        aligned = {
            SOURCE_MARK + key
            for registry in (self, later)
            for entry in registry.sources.values()
            if entry.alignment in sides
            for key in (entry.key, *map(source_key, entry.aliases))
        }
        places = {PLACE_MARK + p for p in self.merges_changed(later)}
        return frozenset(sides | sources | aligned | places)

    def _source_reading(self, key: str) -> tuple[str, str, str, str] | None:
        entry = self.sources.get(self._source_alias.get(key, key))
        if entry is None:
            return None
        return (entry.key, entry.source, entry.reliability, entry.alignment)

    def names_of(self, side: str) -> frozenset[str]:
        """Every name that stands for ``side``: its id and its aliases."""
        entry = self.entries.get(side)
        return frozenset({side, *(entry.aliases if entry is not None else ())})

    def known_names(self) -> frozenset[str]:
        """Every name the registry maps: the registered sides' ids and their aliases (a
        name outside it is an unmapped side)."""
        return frozenset(self.entries.keys() | self._alias.keys())


Registry = SideRegistry
"""The registries of sides and sources at one position (one object: what a fold reads)."""


def canonical_side(registry: SideRegistry, name: str) -> str:
    """The registered side ``name`` stands for (itself when the registry does not know it):
    the one mapping of a dataset's actor label, an event's side, opponent or alignment."""
    return registry.canonical(name)


EMPTY: Final = SideRegistry()


@dataclass(frozen=True, slots=True)
class RegistryRow:
    """One registry event of the log, as the store reads it."""

    position: int
    commit_position: int
    version: int
    submitter: str | None
    event: RegistryEvent


def registry_after(registry: SideRegistry, rows: Iterable[RegistryRow]) -> SideRegistry:
    """``registry`` with the rows (in position order, after its position) applied."""
    for row in rows:
        registry = registry.stated(
            row.event, version=row.version, position=row.position, submitter=row.submitter
        )
    return registry


@dataclass(frozen=True, slots=True)
class RegistryChange:
    """A commit that changed the registry: the registry after it, and the names it remaps."""

    commit: int
    registry: SideRegistry
    remapped: frozenset[str]


class RegistryHistory:
    """The side registry after every commit that changed it: the registry as known at any
    position (what a rebuild folds each commit of a place with)."""

    def __init__(self, rows: Iterable[RegistryRow] = ()) -> None:
        self.changes: list[RegistryChange] = []
        registry = EMPTY
        by_commit: dict[int, list[RegistryRow]] = {}
        for row in rows:
            by_commit.setdefault(row.commit_position, []).append(row)
        for commit in sorted(by_commit):
            later = registry_after(registry, by_commit[commit])
            self.changes.append(RegistryChange(commit, later, registry.remapped(later)))
            registry = later
        self._commits = [change.commit for change in self.changes]

    def at(self, position: int) -> SideRegistry:
        """The registry as known at ``position``."""
        i = bisect_right(self._commits, position) - 1
        return self.changes[i].registry if i >= 0 else EMPTY

    def clusters(self, upto: int | None = None) -> dict[str, frozenset[str]]:
        """Every place that a merge up to ``upto`` (None: all) ever joined with another, with
        the places joined to it then or at another time (transitively): the place streams a
        replay of any of them reads, since its timeline is theirs at some position."""
        parent: dict[str, str] = {}

        def root(place: str) -> str:
            while parent.setdefault(place, place) != place:
                place = parent[place]
            return place

        for change in self.changes:
            if upto is not None and change.commit > upto:
                break
            for merge in change.registry.merges.values():
                parent[root(merge.merged)] = root(merge.place)
        members: dict[str, set[str]] = {}
        for place in parent:
            members.setdefault(root(place), set()).add(place)
        return {place: frozenset(members[root(place)]) for place in parent}

    def between(self, after: int, upto: int) -> list[RegistryChange]:
        """The changes of the commits in ``(after, upto]``, in order."""
        lo = bisect_right(self._commits, after)
        hi = bisect_right(self._commits, upto)
        return self.changes[lo:hi]
