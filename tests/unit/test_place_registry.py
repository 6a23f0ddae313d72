"""The place registry's merge rule (service/domain/places.py), pure: the first report of a place
registers it, later ones only fill what is unknown and add names."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from contracts.events import LocationPrecision, Place, PlaceKind
from service.domain.places import PlaceUpdate, names, registry_updates


def test_the_first_report_registers_the_place() -> None:
    """A place's first report gives its name, kind, point, parent and precision, and its
    names (the given name among them) are the aliases; positions and version are its own."""
    place = Place(
        id="sy-maskanah",
        name="Maskanah",
        kind="town",
        lat=35.96,
        lon=38.04,
        parent="sy-aleppo",
        aliases=("Meskene",),
        precision="exact",
    )
    [update] = registry_updates([(place, 1, 7)])
    assert update == PlaceUpdate(
        id="sy-maskanah",
        name="Maskanah",
        kind="town",
        lat=35.96,
        lon=38.04,
        parent="sy-aleppo",
        aliases={"Maskanah", "Meskene"},
        precision="exact",
        version=1,
        first_position=7,
        last_position=7,
    )


def test_a_place_without_a_name_is_registered_under_its_id() -> None:
    """A report that names no place name registers the place under its id, with no alias."""
    [update] = registry_updates([(Place(id="sy-al-zkuf"), 1, 1)])
    assert update.name == "sy-al-zkuf"
    assert update.aliases == set()


def test_later_reports_fill_gaps_and_never_overwrite() -> None:
    """A later report in the same commit leaves what the first said (name, kind, parent)
    and fills only what was unknown (point, precision); its names join the aliases; the
    version and last position follow it, the first position stays."""
    first = Place(id="sy-tabqa", name="Tabqa", kind="town")
    later = Place(
        id="sy-tabqa",
        name="Al-Thawrah",
        kind="city",
        lat=35.84,
        lon=38.55,
        parent="sy-raqqa",
        aliases=("Madinat al-Thawrah",),
        precision="near",
    )
    [update] = registry_updates([(first, 3, 10), (later, 4, 12)])
    assert (update.name, update.kind, update.parent) == ("Tabqa", "town", "sy-raqqa")
    assert (update.lat, update.lon, update.precision) == (35.84, 38.55, "near")
    assert update.aliases == {"Tabqa", "Al-Thawrah", "Madinat al-Thawrah"}
    assert (update.version, update.first_position, update.last_position) == (4, 10, 12)


def test_a_known_point_is_kept_whole() -> None:
    """Once a report gave a point, a later report's point does not move it (neither its
    latitude nor its longitude)."""
    first = Place(id="sy-x", lat=1.0, lon=2.0)
    later = Place(id="sy-x", lat=3.0, lon=4.0)
    [update] = registry_updates([(first, 1, 1), (later, 2, 2)])
    assert (update.lat, update.lon) == (1.0, 2.0)


def test_one_update_per_place_in_the_order_places_first_appear() -> None:
    """A commit about several places gives one update each, in the order each place first
    appears, every one with its own version and positions."""
    a, b = Place(id="sy-a"), Place(id="sy-b")
    updates = registry_updates([(b, 1, 1), (a, 1, 2), (b, 2, 3)])
    assert [(u.id, u.version, u.first_position, u.last_position) for u in updates] == [
        ("sy-b", 2, 1, 3),
        ("sy-a", 1, 2, 2),
    ]


def test_no_events_no_updates() -> None:
    """A commit with no events tells the registry nothing."""
    assert registry_updates([]) == []


def _place(
    name: str | None,
    kind: PlaceKind | None,
    point: tuple[float, float] | None,
    parent: str | None,
    aliases: list[str],
    precision: LocationPrecision | None,
) -> Place:
    lat, lon = point if point is not None else (None, None)
    return Place(
        id="sy-p",
        name=name,
        kind=kind,
        lat=lat,
        lon=lon,
        parent=parent,
        aliases=tuple(aliases),
        precision=precision,
    )


_places = st.builds(
    _place,
    name=st.none() | st.sampled_from(["Maskanah", "Meskene", "Tabqa"]),
    kind=st.none() | st.sampled_from(["town", "village", "hill"]),
    point=st.none() | st.tuples(st.floats(-90, 90), st.floats(-180, 180)),
    parent=st.none() | st.sampled_from(["sy-aleppo", "sy-raqqa"]),
    aliases=st.lists(st.sampled_from(["A", "B", "C"]), max_size=3),
    precision=st.none() | st.sampled_from(["exact", "near", "district"]),
)


@given(st.lists(_places, min_size=1, max_size=8))
def test_each_field_is_the_first_report_that_gives_it(reports: list[Place]) -> None:
    """For any run of reports about one place: each of kind, parent, precision and the point
    is the first report's that gives one; the name is the first report's (or the id); the
    aliases are every name any report used."""
    [update] = registry_updates((p, i + 1, i + 1) for i, p in enumerate(reports))

    def first(field: str) -> object:
        return next((getattr(p, field) for p in reports if getattr(p, field)), None)

    assert update.name == (reports[0].name or reports[0].id)
    assert (update.kind, update.parent, update.precision) == (
        first("kind"),
        first("parent"),
        first("precision"),
    )
    pointed = next((p for p in reports if p.lat is not None), None)
    assert (update.lat, update.lon) == ((pointed.lat, pointed.lon) if pointed else (None, None))
    assert update.aliases == set().union(*(names(p) for p in reports))
    assert (update.version, update.last_position) == (len(reports), len(reports))
