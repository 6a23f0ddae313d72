#!/usr/bin/env bash
# Re-vendor the API documentation pages' assets (Swagger UI and ReDoc for /schema/swagger and
# /schema/redoc; docs/map.md lists them with their licences). The files are committed; nothing
# runs this at build or run time. Needs npm and the registry. Versions are in the paths, so an
# upgrade is a new folder and a change of SWAGGER_UI / REDOC in service/api/openapi.py.
set -euo pipefail
cd "$(dirname "$0")/.."
SWAGGER_UI=5.36.0
REDOC=2.5.4

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
(
  cd "$scratch"
  npm pack --silent "swagger-ui-dist@$SWAGGER_UI" "redoc@$REDOC" >/dev/null
  mkdir swagger-ui redoc
  tar xzf "swagger-ui-dist-$SWAGGER_UI.tgz" -C swagger-ui
  tar xzf "redoc-$REDOC.tgz" -C redoc
)
static=service/api/static/vendor

dest="$static/swagger-ui-dist-$SWAGGER_UI"
rm -rf "$dest" && mkdir -p "$dest"
src="$scratch/swagger-ui/package"
cp "$src/swagger-ui-bundle.js" "$src/swagger-ui-bundle.js.LICENSE.txt" \
  "$src/swagger-ui-standalone-preset.js" "$src/swagger-ui-standalone-preset.js.LICENSE.txt" \
  "$src/swagger-ui.css" "$src/LICENSE" "$src/NOTICE" "$dest/"

dest="$static/redoc-$REDOC"
rm -rf "$dest" && mkdir -p "$dest"
src="$scratch/redoc/package"
cp "$src/bundles/redoc.standalone.js" "$src/bundles/redoc.standalone.js.LICENSE.txt" \
  "$src/LICENSE" "$dest/"
du -sh "$static/swagger-ui-dist-$SWAGGER_UI" "$static/redoc-$REDOC"
