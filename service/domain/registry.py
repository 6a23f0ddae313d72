"""The side registry: which names are one side, as known at a position of the log. Pure.

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
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

import msgspec

from contracts.events import SIDE_STREAM, SideRegistered
from contracts.registry import SideEntry
from service.domain.errors import FrontlineError, InvalidEvent
from service.domain.policy import NEUTRAL
from service.domain.projection.facts import Fact

#: Names no side may take: ``neutral`` is what a source's alignment says when it leans to
#: no side.
RESERVED: Final = frozenset({NEUTRAL})


class AliasTaken(FrontlineError):
    """A registry edit that would make one name mean two sides. Answered with 409."""

    def __init__(self, detail: str, *, name: str, owner: str, field: str) -> None:
        super().__init__(detail, field=field)
        self.name = name
        self.owner = owner


def side_stream(side: str) -> str:
    """The id of a side's registry stream in the log (its ``place_id`` column)."""
    return SIDE_STREAM + side


def is_registry_stream(stream: str) -> bool:
    """Whether a stream of the log is a registry's rather than a place's."""
    return ":" in stream


class SideRegistry:
    """The side registry at one position: entries by id, and every alias's side.

    Immutable once built; :meth:`stated` gives the registry after one more event.
    """

    __slots__ = ("_alias", "entries", "position")

    def __init__(self, entries: Mapping[str, SideEntry] | None = None, position: int = 0) -> None:
        self.entries: dict[str, SideEntry] = dict(entries or {})
        self.position = position
        """The last position this registry has read (the registry as known at it)."""
        self._alias: dict[str, str] = {
            alias: entry.side for entry in self.entries.values() for alias in entry.aliases
        }

    def __len__(self) -> int:
        return len(self.entries)

    def canonical(self, name: str) -> str:
        """The registered side a name stands for: itself when it is no alias."""
        return self._alias.get(name, name)

    def owner(self, name: str) -> str | None:
        """The side that registered ``name`` as its id or an alias, or None."""
        if name in self.entries:
            return name
        return self._alias.get(name)

    def canonical_fact(self, fact: Fact) -> Fact:
        """The fact with its side, opponent and alignment read through the registry; the
        same object when no alias applies (most facts, and every fact of an empty registry)."""
        alias = self._alias
        if not alias:
            return fact
        side = alias.get(fact.side, fact.side) if fact.side is not None else None
        opponent = alias.get(fact.opponent, fact.opponent) if fact.opponent is not None else None
        alignment = alias.get(fact.alignment, fact.alignment)
        if side is fact.side and opponent is fact.opponent and alignment is fact.alignment:
            return fact
        return msgspec.structs.replace(fact, side=side, opponent=opponent, alignment=alignment)

    def check(self, event: SideRegistered, where: str = "") -> None:
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
        self, event: SideRegistered, *, version: int, position: int, submitter: str | None
    ) -> SideRegistry:
        """The registry once ``event`` (checked) is in the log at ``position``."""
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
        return SideRegistry(entries, max(self.position, position))

    def remapped(self, later: SideRegistry) -> frozenset[str]:
        """The names ``later`` reads as another side than this registry does: the places
        whose events use one of them must be folded again."""
        names = self._alias.keys() | later._alias.keys()
        return frozenset(n for n in names if self.canonical(n) != later.canonical(n))

    def names_of(self, side: str) -> frozenset[str]:
        """Every name that stands for ``side``: its id and its aliases."""
        entry = self.entries.get(side)
        return frozenset({side, *(entry.aliases if entry is not None else ())})


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
    event: SideRegistered


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

    def between(self, after: int, upto: int) -> list[RegistryChange]:
        """The changes of the commits in ``(after, upto]``, in order."""
        lo = bisect_right(self._commits, after)
        hi = bisect_right(self._commits, upto)
        return self.changes[lo:hi]
