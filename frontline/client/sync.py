"""The synchronous client: :class:`Client`, its page iterator and its live stream."""

from __future__ import annotations

import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Final, Generic, Self, TypeVar

import httpx
import msgspec

from contracts.audit import PublicKey, SignedHead, VerifyReport
from contracts.front import (
    Frame,
    GeoAreas,
    HistoryEntry,
    NetChange,
    PlaceDetail,
    PlaceEvents,
    PlaceState,
    PlaceTimeline,
    RebuildResult,
    StateExtent,
    Transition,
)
from contracts.responses import AppendResult, EventDetail, Health, ImportResult, StoredEvent
from frontline.client import calls
from frontline.client.calls import Expect, Exported, FileSource, ImportFormat, Request, When
from frontline.client.errors import FrontlineClientError, TransportError, problem_error
from frontline.client.ndjson import EventLike, NdjsonSource, Tally, chunks, new_key, numbered_lines
from frontline.client.pages import PageWalk, query
from frontline.client.retry import RETRY_ERRORS, Retry
from frontline.client.sse import SseParser
from frontline.client.tables import Casualty, rows_of, to_geopandas, to_pandas

T = TypeVar("T")
R = TypeVar("R")

USER_AGENT: Final = "frontline-client/0.1"
_stored: Final = msgspec.json.Decoder(StoredEvent)
_frame: Final = msgspec.json.Decoder(Frame)


def default_headers(key: str | None) -> dict[str, str]:
    """The headers every request carries: the key (when given) and who is asking."""
    headers = {"user-agent": USER_AGENT}
    if key is not None:
        headers["authorization"] = f"Bearer {key}"
    return headers


class Client:
    """A Frontline server, over HTTP, from synchronous code.

    ``url`` is the server's base URL (``http://127.0.0.1:8000``), ``key`` an API key (sent
    as ``Authorization: Bearer``). Every request is retried on a connection error, a
    timeout, a 5xx or a 429 as ``retry`` says (``Retry-After`` honoured); writes are safe to
    retry because every event sent carries an id (see :mod:`frontline.client.ndjson`).
    Errors raise :class:`~frontline.client.errors.ProblemError` (the problem body as sent)
    or :class:`~frontline.client.errors.TransportError`. ``transport`` replaces httpx's
    (an ``httpx.MockTransport``, or ``httpx.WSGITransport``); use as a context manager, or
    call :meth:`close`.
    """

    def __init__(
        self,
        url: str,
        key: str | None = None,
        *,
        retry: Retry | None = None,
        timeout: float = 30.0,
        stream_timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.retry = retry or Retry()
        self._stream_timeout = httpx.Timeout(timeout, read=stream_timeout)
        self._http = httpx.Client(
            base_url=self.url,
            headers=default_headers(key),
            timeout=timeout,
            transport=transport,
        )

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    # The transport, with retries --------------------------------------------------------

    def _open(self, request: Request, *, streaming: bool = False) -> httpx.Response:
        """Send ``request`` and return its answer with the body unread (the caller closes
        it): retried on transport errors and on retryable statuses; an error answer raises
        its problem."""
        attempt = 0
        while True:
            attempt += 1
            built = self._http.build_request(
                request.method,
                request.path,
                params=request.params,
                headers=request.headers,
                content=request.content,
                timeout=self._stream_timeout if streaming else httpx.USE_CLIENT_DEFAULT,
            )
            try:
                response = self._http.send(built, stream=True)
            except RETRY_ERRORS as error:
                wait = self.retry.delay(attempt, None)
                if wait is None:
                    raise TransportError(
                        f"{request.method} {request.path}: {error!r} (after {attempt} attempts)",
                        attempt,
                    ) from error
                time.sleep(wait)
                continue
            if response.status_code < 400:
                return response
            try:
                content = response.read()
            except RETRY_ERRORS:
                content = b""
            finally:
                response.close()
            wait = (
                self.retry.delay(attempt, response.headers.get("retry-after"))
                if response.status_code in self.retry.statuses
                else None
            )
            if wait is None:
                raise problem_error(response.status_code, content, dict(response.headers))
            time.sleep(wait)

    def _send(self, request: Request) -> bytes:
        """Send ``request``; its whole body (read again from the start on a failure)."""
        attempt = 0
        while True:
            attempt += 1
            response = self._open(request)
            try:
                return response.read()
            except RETRY_ERRORS as error:
                wait = self.retry.delay(attempt, None)
                if wait is None:
                    raise TransportError(f"{request.path}: {error!r}", attempt) from error
                time.sleep(wait)
            finally:
                response.close()

    def _get(self, path: str, kind: type[R], **params: Any) -> R:
        return msgspec.json.decode(
            self._send(Request("GET", path, params=query(**params))), type=kind
        )

    def _pages(self, walk: PageWalk[T]) -> Pages[T]:
        return Pages(walk, lambda: self._send(Request("GET", walk.path, params=walk.params)))

    # Writes -------------------------------------------------------------------------

    def append(self, event: EventLike, *, idempotency_key: str | None = None) -> AppendResult:
        """Append one event (a contract struct such as ``contracts.events.Capture``, or a
        dict); its receipt (``duplicate`` when it was already stored).

        An event without an id gets the one the contract derives from ``idempotency_key``
        (a fresh key when not given) and index 0: retries send the same id, so the event is
        stored once. Give the same key again to make a whole re-run idempotent.
        """
        key = idempotency_key or new_key()
        return msgspec.json.decode(self._send(calls.append(event, key)), type=AppendResult)

    def append_batch(
        self,
        events: Iterable[EventLike],
        *,
        expect: Expect | None = None,
        idempotency_key: str | None = None,
    ) -> AppendResult:
        """Append events atomically (all or none), under ``expect`` preconditions on place
        streams (``{"sy-maskanah": 5, "sy-raqqa": "none"}``): a precondition that does not
        hold raises :class:`~frontline.client.errors.Conflict` (409) naming the place, the
        expected and the actual version, and nothing is written. Events without an id get
        the ids derived from the key and their index."""
        key = idempotency_key or new_key()
        request = calls.batch(events, key, expect)
        return msgspec.json.decode(self._send(request), type=AppendResult)

    def import_events(
        self,
        source: NdjsonSource,
        *,
        idempotency_key: str | None = None,
        chunk_lines: int = 5000,
        chunk_bytes: int = 4 << 20,
        max_errors: int = 1000,
    ) -> ImportResult:
        """Import a stream of events of any size as NDJSON: from a file (its path, or a
        binary file), or an iterable of events or raw lines. Sent in chunks of at most
        ``chunk_lines`` lines and about ``chunk_bytes`` bytes, so memory holds one chunk;
        each chunk is retried alone. Lines without an id get the id derived from the key
        and their line number minus one (the ids the server gives the whole stream under
        ``Idempotency-Key: <key>``). The result adds the chunks' up, with line numbers of
        the whole stream; ``errors`` and ``flags`` list at most ``max_errors`` each."""
        key = idempotency_key or new_key()
        tally = Tally(max_errors=max_errors)
        lines = numbered_lines(source, key)
        for chunk in chunks(lines, max_lines=chunk_lines, max_bytes=chunk_bytes):
            answer = self._send(calls.ndjson_chunk(chunk.body))
            tally.add(msgspec.json.decode(answer, type=ImportResult), chunk.numbers)
        return tally.result()

    def import_file(self, source: FileSource, format: ImportFormat) -> ImportResult:
        """Import a source file (ACLED or UCDP GED CSV, PLOVER JSON) through
        ``POST /v1/imports``: its ids derive from the source's, so it is safe to retry."""
        return msgspec.json.decode(self._send(calls.import_file(source, format)), type=ImportResult)

    def rebuild(self) -> RebuildResult:
        """Rebuild the projections from the log (admin); answers when the new rows serve."""
        return msgspec.json.decode(
            self._send(Request("POST", "/v1/admin/rebuild")), type=RebuildResult
        )

    # The log ------------------------------------------------------------------------

    def event(self, event_id: uuid.UUID | str) -> EventDetail:
        """One stored event and the events that link to it."""
        return msgspec.json.decode(self._send(calls.event(event_id)), type=EventDetail)

    def events(
        self,
        *,
        after: int | None = None,
        place: str | None = None,
        type: str | None = None,
        source: str | None = None,
        page_size: int = 500,
    ) -> Pages[StoredEvent]:
        """The log in position order (after position ``after``), every page."""
        walk = calls.events(after=after, place=place, type_=type, source=source, limit=page_size)
        return self._pages(walk)

    def casualties(
        self,
        *,
        place: str | None = None,
        source: str | None = None,
        type: str | None = "casualties",
        page_size: int = 500,
    ) -> Pages[Casualty]:
        """Every casualty claim, one per event that carries figures, with its source and
        place: those of ``casualties`` events by default; ``type=None`` reads every event
        of the log (clashes and strikes carry figures too)."""
        walk = calls.casualties(place=place, source=source, type_=type, limit=page_size)
        return self._pages(walk)

    def follow(
        self,
        *,
        after: int | None = None,
        last_event_id: str | None = None,
        place: str | None = None,
        type: str | None = None,
        source: str | None = None,
    ) -> LiveEvents:
        """The live stream: every event after ``after`` (or after ``last_event_id``, a
        position a previous stream delivered), then each as its commit lands, for as long
        as it is read. A dropped connection is resumed after the last event delivered
        (``Last-Event-ID``): no gap, no duplicate."""
        request = calls.live(
            after=after, last_event_id=last_event_id, place=place, type_=type, source=source
        )
        return LiveEvents(self, request)

    def export(
        self, out: str | Path | IO[bytes], *, known_at: When | None = None, format: str = "ndjson"
    ) -> Exported:
        """Write the log up to ``known_at`` (default the latest) to ``out`` (a path or a
        binary file) as ``ndjson``, ``csv`` or ``acled``, streamed. The same question gives
        the same bytes, so a connection dropped half-way is resumed: asked again pinned to
        the position of the first answer, the bytes already written skipped."""
        request = calls.export(known_at=known_at, fmt=format)
        if isinstance(out, str | Path):
            with Path(out).open("wb") as handle:
                return self._export(request, handle, format)
        return self._export(request, out, format)

    def _export(self, request: Request, sink: IO[bytes], fmt: str) -> Exported:
        written = 0
        failures = 0
        first: tuple[int | None, str | None] | None = None
        while True:
            response = self._open(request, streaming=True)
            try:
                position = _position(response)
                etag = response.headers.get("etag")
                if first is None:
                    first = (position, etag)
                    if position is not None:  # a retry asks for exactly these bytes
                        request = calls.export(known_at=f"position:{position}", fmt=fmt)
                elif first != (position, etag):
                    raise FrontlineClientError(
                        f"the export changed on resuming ({first} then {(position, etag)})"
                    )
                skip = written
                for chunk in response.iter_bytes():
                    if skip >= len(chunk):
                        skip -= len(chunk)
                        continue
                    sink.write(chunk[skip:])
                    written += len(chunk) - skip
                    skip = 0
                return Exported(position=position, etag=etag, bytes=written)
            except RETRY_ERRORS as error:
                failures += 1
                wait = self.retry.delay(failures, None)
                if wait is None:
                    raise TransportError(f"export: {error!r}", failures) from error
                time.sleep(wait)
            finally:
                response.close()

    # The front ----------------------------------------------------------------------

    def state(
        self,
        *,
        valid_at: When | None = None,
        known_at: When | None = None,
        bbox: Sequence[float] | None = None,
        side: str | None = None,
        status: str | None = None,
        disputed: bool | None = None,
        page_size: int = 500,
    ) -> Pages[PlaceState]:
        """The front at ``valid_at`` (default now) as known at ``known_at`` (a timestamp or
        ``position:N``; default the latest), every place, page by page (the pages after the
        first pinned to the first's position)."""
        walk = calls.state(
            valid_at=valid_at,
            known_at=known_at,
            bbox=bbox,
            side=side,
            status=status,
            disputed=disputed,
            limit=page_size,
        )
        return self._pages(walk)

    def disputes(
        self, *, valid_at: When | None = None, known_at: When | None = None, page_size: int = 500
    ) -> Pages[PlaceState]:
        """The disputed places at ``valid_at``, each with its competing claims."""
        return self._pages(calls.disputes(valid_at=valid_at, known_at=known_at, limit=page_size))

    def changes(
        self,
        from_: When,
        to: When,
        *,
        known_at: When | None = None,
        place: str | None = None,
        side: str | None = None,
        bbox: Sequence[float] | None = None,
        page_size: int = 500,
    ) -> Pages[Transition]:
        """Every change of the front with ``from_ <= at <= to``, before and after."""
        walk = calls.changes(
            from_=from_, to=to, known_at=known_at, place=place, side=side, bbox=bbox,
            net=False, limit=page_size,
        )  # fmt: skip
        return self._pages(walk)  # type: ignore[arg-type]

    def net_changes(
        self,
        from_: When,
        to: When,
        *,
        known_at: When | None = None,
        place: str | None = None,
        side: str | None = None,
        bbox: Sequence[float] | None = None,
        page_size: int = 500,
    ) -> Pages[NetChange]:
        """Each place whose reading differs between ``from_`` and ``to``, once."""
        walk = calls.changes(
            from_=from_, to=to, known_at=known_at, place=place, side=side, bbox=bbox,
            net=True, limit=page_size,
        )  # fmt: skip
        return self._pages(walk)  # type: ignore[arg-type]

    def extent(self, *, known_at: When | None = None) -> StateExtent:
        """How far the log reaches in valid and known time."""
        return self._get("/v1/state/extent", StateExtent, known_at=calls.known(known_at))

    def areas(
        self,
        *,
        valid_at: When | None = None,
        known_at: When | None = None,
        bbox: Sequence[float] | None = None,
    ) -> GeoAreas:
        """The areas of control (GeoJSON MultiPolygons) at ``valid_at``."""
        return self._get(
            "/v1/state/areas",
            GeoAreas,
            valid_at=valid_at,
            known_at=calls.known(known_at),
            bbox=bbox,
        )

    def export_front(
        self,
        out: str | Path | IO[bytes],
        *,
        valid_at: When | None = None,
        known_at: When | None = None,
    ) -> Exported:
        """Write the whole front at ``valid_at`` as CSV (the same bytes for the same
        question)."""
        response = self._open(calls.front_csv(valid_at=valid_at, known_at=known_at))
        try:
            body = response.read()
        finally:
            response.close()
        if isinstance(out, str | Path):
            Path(out).write_bytes(body)
        else:
            out.write(body)
        return Exported(position=None, etag=response.headers.get("etag"), bytes=len(body))

    def place(
        self, place_id: str, *, valid_at: When | None = None, known_at: When | None = None
    ) -> PlaceDetail:
        """A place, its version, and its segment at ``valid_at``."""
        return self._get(
            f"/v1/places/{place_id}", PlaceDetail, valid_at=valid_at, known_at=calls.known(known_at)
        )

    def timeline(self, place_id: str, *, known_at: When | None = None) -> PlaceTimeline:
        """Every segment of a place's timeline as known at ``known_at``."""
        return self._get(
            f"/v1/places/{place_id}/timeline", PlaceTimeline, known_at=calls.known(known_at)
        )

    def place_events(
        self, place_id: str, *, known_at: When | None = None, page_size: int = 500
    ) -> PlaceEvents:
        """Every event about a place, with its links both ways and whether it is in force:
        every page, read as known at the first page's position, as one answer."""
        path = f"/v1/places/{place_id}/events"
        first = self._get(path, PlaceEvents, known_at=calls.known(known_at), limit=page_size)
        events, page = list(first.events), first
        while page.next_cursor is not None:
            cursor = page.next_cursor
            page = self._get(
                path,
                PlaceEvents,
                known_at=f"position:{first.known_position}",
                cursor=cursor,
                limit=page_size,
            )
            if page.next_cursor == cursor:
                raise FrontlineClientError(f"{path}: the server named the same page again")
            events.extend(page.events)
        return msgspec.structs.replace(first, events=events, next_cursor=None, next=None)

    def history(self, place_id: str, *, page_size: int = 100) -> Pages[HistoryEntry]:
        """A place's commits, each with the segments it replaced and added."""
        return self._pages(calls.history(place_id, limit=page_size))

    # The audit and operations --------------------------------------------------------

    def head(self) -> SignedHead:
        """The log's head, signed when the server has a key: save it, verify against it later."""
        return self._get("/v1/audit/head", SignedHead)

    def public_key(self) -> PublicKey:
        """The public key that signs heads (NotFound when the server has none)."""
        return self._get("/v1/audit/key", PublicKey)

    def verify(
        self,
        *,
        from_: int | None = None,
        to: int | None = None,
        head: SignedHead | None = None,
        projections: str | None = None,
    ) -> VerifyReport:
        """The audit's verification of the chain, links and projections (``ok``); with a
        saved ``head``, also whether the log still holds it."""
        request = calls.verify(from_=from_, to=to, head=head, projections=projections)
        return msgspec.json.decode(self._send(request), type=VerifyReport)

    def health(self) -> Health:
        """Liveness."""
        return self._get("/health", Health)

    def ready(self) -> Health:
        """Readiness (raises ServerError 503 when not ready, after the retries)."""
        return self._get("/ready", Health)


def _position(response: httpx.Response) -> int | None:
    value = response.headers.get("x-frontline-position")
    return int(value) if value is not None and value.isdigit() else None


class Pages(Generic[T]):
    """A list read page by page as it is iterated (one pass, like a generator).

    ``frame`` is the first page's frame (policy, valid time, known position) once a page
    has been read; ``to_pandas()`` and ``to_geopandas()`` read the rest of the list into a
    table (events, places' states and casualty claims).
    """

    def __init__(self, walk: PageWalk[T], fetch: Callable[[], bytes]) -> None:
        self._walk = walk
        self._fetch = fetch
        self._buffer: deque[T] = deque()

    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        while not self._buffer:
            if self._walk.done:
                raise StopIteration
            self._buffer.extend(self._walk.read(self._fetch()))
        return self._buffer.popleft()

    @property
    def frame(self) -> Frame | None:
        """The first page's frame (reads the first page if none was read yet)."""
        if self._walk.pages == 0 and not self._walk.done:
            self._buffer.extend(self._walk.read(self._fetch()))
        raw = self._walk.frame
        return None if raw is None else _frame.decode(raw)

    @property
    def pages(self) -> int:
        """How many pages have been read."""
        return self._walk.pages

    def all(self) -> list[T]:
        """The rest of the list."""
        return list(self)

    def to_pandas(self) -> Any:
        """The rest of the list as a pandas DataFrame (pandas needed)."""
        return to_pandas(rows_of(self.all()))

    def to_geopandas(self) -> Any:
        """The rest of the list as a GeoPandas GeoDataFrame of points (GeoPandas needed)."""
        return to_geopandas(rows_of(self.all()))


class LiveEvents:
    """The live stream as an iterator of stored events; resumes by itself after a dropped
    connection (``Last-Event-ID``: the last event delivered), and raises TransportError
    when the retries run out. ``last_event_id`` is the position to resume from in a later
    run. Close it (or use it as a context manager) to end the stream."""

    def __init__(self, client: Client, request: Request) -> None:
        self._client = client
        self._request = request
        self.last_event_id: str | None = request.headers.get("last-event-id")
        self._response: httpx.Response | None = None
        self._lines: Iterator[str] | None = None
        self._parser = SseParser()
        self._failures = 0
        self.reconnects = 0
        """How many times the stream was opened again after a drop."""

    def __iter__(self) -> Iterator[StoredEvent]:
        return self

    def __next__(self) -> StoredEvent:
        while True:
            if self._lines is None:
                self._connect()
            assert self._lines is not None
            try:
                line = next(self._lines)
            except StopIteration:
                self._drop(None)
                continue
            except RETRY_ERRORS as error:
                self._drop(error)
                continue
            message = self._parser.feed(line)
            if message is None or message.event != "event":
                continue
            self.last_event_id = message.id
            self._failures = 0
            return _stored.decode(message.data)

    def _connect(self) -> None:
        request = calls.resumed(self._request, self.last_event_id)
        self._response = self._client._open(request, streaming=True)
        self._lines = self._response.iter_lines()
        self._parser = SseParser(last_id=self.last_event_id)

    def _drop(self, error: Exception | None) -> None:
        self._close_response()
        self._failures += 1
        wait = self._client.retry.delay(self._failures, None)
        if wait is None:
            raise TransportError(
                f"the live stream ended after {self._failures} attempts", self._failures
            ) from error
        time.sleep(wait)
        self.reconnects += 1

    def _close_response(self) -> None:
        if self._response is not None:
            self._response.close()
        self._response = None
        self._lines = None

    def close(self) -> None:
        """End the stream."""
        self._close_response()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()
