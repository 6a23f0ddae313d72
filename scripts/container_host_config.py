#!/usr/bin/env python3
"""Print, as shell assignments, the package mirrors this host is configured to use.

Used by scripts/docker-check.sh so that the image build reaches exactly the registries the host
reaches. Nothing here names a registry: every value is read from the host's own configuration.

* Debian: the URIs of the enabled APT sources (one-line ``*.list`` and deb822 ``*.sources``) for
  the main suite and for the security suite.
* pip: ``index-url``, ``extra-index-url``, ``find-links`` and ``cert`` as pip itself resolves them
  (config files and ``PIP_*`` environment variables, via ``pip config list``), plus the local
  directories that ``file://`` indexes and find-links point to, so the build can bind-mount them.

Usage: container_host_config.py SUITE   (e.g. bookworm)
"""

from __future__ import annotations

import ast
import glob
import os
import shlex
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlparse

APT_DIR = "/etc/apt"


def _deb822_stanzas(text: str) -> list[dict[str, str]]:
    stanzas: list[dict[str, str]] = []
    current: dict[str, str] = {}
    key = ""
    for raw in text.splitlines():
        line = raw.rstrip()
        if line.startswith("#"):
            continue
        if not line.strip():
            if current:
                stanzas.append(current)
            current, key = {}, ""
            continue
        if line[0] in " \t" and key:
            current[key] += "\n" + line.strip()
            continue
        if ":" in line:
            key, _, value = line.partition(":")
            key = key.strip().lower()
            current[key] = value.strip()
    if current:
        stanzas.append(current)
    return stanzas


def apt_sources() -> list[tuple[str, list[str]]]:
    """(uri, suites) for each enabled 'deb' source."""
    out: list[tuple[str, list[str]]] = []
    one_line = [os.path.join(APT_DIR, "sources.list")]
    one_line += sorted(glob.glob(os.path.join(APT_DIR, "sources.list.d", "*.list")))
    for path in one_line:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError:
            continue
        for raw in text.splitlines():
            parts = raw.split("#", 1)[0].split()
            if not parts or parts[0] != "deb":
                continue
            parts = parts[1:]
            if parts and parts[0].startswith("["):  # options: [arch=amd64 signed-by=...]
                while parts and not parts[0].endswith("]"):
                    parts = parts[1:]
                parts = parts[1:]
            if len(parts) >= 2:
                out.append((parts[0], [parts[1]]))
    for path in sorted(glob.glob(os.path.join(APT_DIR, "sources.list.d", "*.sources"))):
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError:
            continue
        for st in _deb822_stanzas(text):
            if st.get("enabled", "yes").lower() == "no":
                continue
            if "deb" not in st.get("types", "").split():
                continue
            for uri in st.get("uris", "").split():
                out.append((uri, st.get("suites", "").split()))
    return out


def debian_mirrors(suite: str) -> tuple[str, str]:
    main = security = ""
    for uri, suites in apt_sources():
        if not main and suite in suites:
            main = uri
        if not security and f"{suite}-security" in suites:
            security = uri
    return main, security


def pip_settings() -> dict[str, str]:
    """pip's effective settings: config files, overridden by PIP_* environment variables."""
    try:
        listing = subprocess.run(
            [sys.executable, "-m", "pip", "config", "list"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        listing = ""
    files: dict[str, str] = {}
    env: dict[str, str] = {}
    for line in listing.splitlines():
        key, sep, value = line.partition("=")
        if not sep or "." not in key:
            continue
        section, _, name = key.rpartition(".")
        try:
            parsed = ast.literal_eval(value)
        except (SyntaxError, ValueError):
            parsed = value
        parsed = str(parsed)
        if section == ":env:":
            env[name] = parsed
        elif section in ("global", "install") and (section == "install" or name not in files):
            files[name] = parsed
    # pip reads PIP_* itself; `pip config list` shows them as :env:. Environment wins.
    for name in ("index-url", "extra-index-url", "find-links", "cert"):
        value = os.environ.get("PIP_" + name.upper().replace("-", "_"))
        if value:
            env[name] = value
    return {**files, **env}


def local_paths(values: list[str]) -> list[str]:
    """Local directories/files referenced by file:// URLs or plain paths (for bind mounts)."""
    paths: list[str] = []
    for value in values:
        for item in value.split():
            parsed = urlparse(item)
            if parsed.scheme == "file":
                path = unquote(parsed.path)
            elif parsed.scheme == "" and item.startswith("/"):
                path = item
            else:
                continue
            if os.path.exists(path):
                # mount the index root (…/simple's parent) so relative links to ../files resolve
                if os.path.basename(path.rstrip("/")) == "simple":
                    path = os.path.dirname(path.rstrip("/"))
                if path not in paths:
                    paths.append(path)
    return paths


def main() -> int:
    suite = sys.argv[1] if len(sys.argv) > 1 else "bookworm"
    main_uri, security_uri = debian_mirrors(suite)
    pip = pip_settings()
    index_url = pip.get("index-url", "")
    extra = pip.get("extra-index-url", "")
    find_links = pip.get("find-links", "")
    cert = pip.get("cert", "")
    values = {
        "HOST_DEBIAN_MIRROR": main_uri,
        "HOST_DEBIAN_SECURITY_MIRROR": security_uri,
        "HOST_PIP_INDEX_URL": index_url,
        "HOST_PIP_EXTRA_INDEX_URL": " ".join(extra.split()),
        "HOST_PIP_FIND_LINKS": " ".join(find_links.split()),
        "HOST_PIP_CERT": cert,
        "HOST_PIP_LOCAL_PATHS": " ".join(local_paths([index_url, extra, find_links])),
    }
    for key, value in values.items():
        print(f"{key}={shlex.quote(value)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
