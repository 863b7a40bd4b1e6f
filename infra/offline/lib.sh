# shellcheck shell=bash
# Shared helpers for infra/offline steps. Source, don't run.
set -euo pipefail
OFFLINE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
. "$OFFLINE_DIR/versions.env"
export LABKIT_CACHE="${LABKIT_CACHE:-$HOME/.cache/labkit/offline}"
export GOMAXPROCS="${GOMAXPROCS:-2}"
export GOFLAGS="${GOFLAGS:--mod=mod}"
export CGO_ENABLED="${CGO_ENABLED:-0}"
BIN="$LABKIT_CACHE/bin"
mkdir -p "$LABKIT_CACHE" "$BIN"
export PATH="$BIN:$PATH"

log() { printf '[offline %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
# nice wrapper for heavy work: other people share this machine
heavy() { nice -n 19 ionice -c3 "$@"; }
# image_exists NAME:TAG
image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

# inputs_hash FILE...: short hash of the given files (+ versions.env), to tag built images
# with what they were built from, so a changed script or version rebuilds them.
# Patterns are expanded inside OFFLINE_DIR (quote them: 'files/*'), whatever the caller's cwd.
inputs_hash() { (cd "$OFFLINE_DIR" && shopt -s nullglob && cat versions.env $*) | sha256sum | cut -c1-12; }
# image_label IMAGE KEY
image_label() { docker image inspect -f "{{ index .Config.Labels \"$2\" }}" "$1" 2>/dev/null || true; }
# Keep a `docker save` of big images in the cache: a machine whose Docker state is gone but
# whose cache is kept (or a cache copied from elsewhere) gets them back with `docker load`.
image_tar() { echo "$LABKIT_CACHE/saved/$(echo "$1" | tr '/:' '__')-$2.tar"; }
image_persist() { # IMAGE HASH
  local f; f="$(image_tar "$1" "$2")"; mkdir -p "$(dirname "$f")"
  [ -s "$f" ] || { docker save "$1" -o "$f.tmp" && mv "$f.tmp" "$f"; }
  find "$(dirname "$f")" -name "$(echo "$1" | tr '/:' '__')-*.tar" ! -name "$(basename "$f")" -delete
}
image_restore() { # IMAGE HASH -> 0 if the image with that hash is (now) present
  [ "$(image_label "$1" labkit.inputs)" = "$2" ] && return 0
  local f; f="$(image_tar "$1" "$2")"
  [ -s "$f" ] || return 1
  log "docker load $f"; docker load -i "$f" >/dev/null
  [ "$(image_label "$1" labkit.inputs)" = "$2" ]
}
