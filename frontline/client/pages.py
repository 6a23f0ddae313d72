"""Lists read page after page: one rule for every list, the sync and the async client alike.

A list answer names its next page in one of the ways the API has spoken (newest first):

* ``next_cursor``: pass it as ``cursor``; null on the last page (the convention of every
  list: ``/v1/state``, ``/v1/state/changes``, ``/v1/disputes``, and the log once it follows
  it);
* ``next_after`` (a place's history): pass it as ``after``; null on the last page;
* ``next`` as a position (the log's older form): pass it as ``after``; an empty page is the
  last.

An answer about the front names the position it is as of (``frame.known_position``); the
pages after the first are asked ``known_at=position:N`` with that position, so that a walk
over many pages reads one state of the log even while events arrive.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Generic, TypeVar

import msgspec

from frontline.client.errors import FrontlineClientError

T = TypeVar("T")


class _Frame(msgspec.Struct):
    """The part of an answer's ``frame`` a walk needs."""

    known_position: int | None = None


class PageMeta(msgspec.Struct):
    """What a page says besides its items."""

    next_cursor: str | msgspec.UnsetType | None = msgspec.UNSET
    next_after: int | msgspec.UnsetType | None = msgspec.UNSET
    next: Any = msgspec.UNSET
    frame: _Frame | None = None
    total: int | None = None


_members: Final = msgspec.json.Decoder(dict[str, msgspec.Raw])
_meta: Final = msgspec.json.Decoder(PageMeta)


@dataclass
class PageWalk(Generic[T]):
    """One list read: where it starts, and how to read each page and find the next one."""

    path: str
    params: dict[str, str]
    items_key: str
    decode: Callable[[msgspec.Raw], list[T]]
    """Reads the items member into the client's structs."""
    pin_known_at: bool = False
    """The list answers about the front as known at a position: pin later pages to the
    first page's."""
    frame: msgspec.Raw | None = field(default=None)
    """The first page's ``frame`` as sent (None when the list has none)."""
    total: int | None = None
    """The first page's ``total``, when the server counts it."""
    pages: int = 0

    def read(self, body: bytes) -> list[T]:
        """One page's items; moves ``params`` on to the next page, or sets them to ``{}``
        after the last."""
        members = _members.decode(body)
        if self.items_key not in members:
            raise FrontlineClientError(f"{self.path}: the answer has no {self.items_key!r}")
        items = self.decode(members[self.items_key])
        meta = _meta.decode(body)
        if self.pages == 0:
            self.frame = members.get("frame")
            self.total = meta.total
        self.pages += 1
        following = self.following(meta, bool(items))
        if following is not None and following == self.params:
            raise FrontlineClientError(
                f"{self.path}: the server named the same page again ({following})"
            )
        pinned = None if meta.frame is None else meta.frame.known_position
        if following is not None and self.pin_known_at and pinned is not None:
            following["known_at"] = f"position:{pinned}"
        self.params = following if following is not None else {}
        return items

    @property
    def done(self) -> bool:
        """The last page has been read."""
        return self.pages > 0 and not self.params

    def following(self, meta: PageMeta, any_items: bool) -> dict[str, str] | None:
        """The parameters of the next page, or None after the last."""
        rest = {k: v for k, v in self.params.items() if k not in ("cursor", "after")}
        if meta.next_cursor is not msgspec.UNSET:
            return None if meta.next_cursor is None else {**rest, "cursor": meta.next_cursor}
        if meta.next_after is not msgspec.UNSET:
            return None if meta.next_after is None else {**rest, "after": str(meta.next_after)}
        if isinstance(meta.next, int) and not isinstance(meta.next, bool):
            return {**rest, "after": str(meta.next)} if any_items else None
        return None


def query(**values: Any) -> dict[str, str]:
    """Query parameters: None left out, booleans as ``true``/``false``, the rest as text
    (``from_`` sent as ``from``)."""
    found: dict[str, str] = {}
    for name, value in values.items():
        if value is None:
            continue
        key = name.rstrip("_")
        if isinstance(value, bool):
            found[key] = "true" if value else "false"
        elif isinstance(value, tuple | list):
            found[key] = ",".join(str(v) for v in value)
        elif isinstance(value, Mapping):
            raise TypeError(f"{name}: a mapping is not a query parameter")
        else:
            found[key] = value.isoformat() if hasattr(value, "isoformat") else str(value)
    return found
