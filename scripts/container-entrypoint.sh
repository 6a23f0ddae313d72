#!/bin/sh
# Container entry point for the Frontline image (see Dockerfile).
#
#   no arguments  -> `frontline migrate` (unless FRONTLINE_MIGRATE=0), then
#                    `frontline serve --host $FRONTLINE_HOST --port $FRONTLINE_PORT`
#   arguments     -> run them instead (e.g. `frontline migrate`, `python3`)
#
# The container expects an external PostgreSQL: DATABASE_URL for the service's login role and,
# when the schema owner is another role (DESIGN 6), FRONTLINE_MIGRATE_DATABASE_URL for the
# migrations. Without DATABASE_URL the application would start its embedded PostgreSQL inside
# the container, which is not what a deployment wants.
set -eu

if [ "$#" -gt 0 ]; then
  exec "$@"
fi

if [ -z "${DATABASE_URL:-}" ] && [ "${FRONTLINE_ALLOW_EMBEDDED_DB:-0}" != "1" ]; then
  echo "frontline-entrypoint: DATABASE_URL is not set (set FRONTLINE_ALLOW_EMBEDDED_DB=1 to use the embedded PostgreSQL)" >&2
  exit 64
fi

case "${FRONTLINE_MIGRATE:-1}" in
  0 | false | no) echo "frontline-entrypoint: FRONTLINE_MIGRATE=${FRONTLINE_MIGRATE}; not running migrations" >&2 ;;
  *) frontline migrate ;;
esac

exec frontline serve --host "${FRONTLINE_HOST:-0.0.0.0}" --port "${FRONTLINE_PORT:-8000}"
