#!/usr/bin/env bash
# Build (or reuse) the offline kind toolchain: Docker engine, kind, Kubernetes binaries,
# component images, kind base + node image, Python base image. Every step is idempotent and
# cached in ${LABKIT_CACHE:-~/.cache/labkit/offline}. Needs root, Debian apt, Go and the Go
# module proxy. The Python base image (debootstrap: network/disk bound) is built in the
# background while the Go builds (CPU bound) run.
#   bash infra/offline/prepare.sh            # all steps
#   bash infra/offline/prepare.sh 30 40      # only steps whose file name starts with these
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
. "$HERE/lib.sh"
steps=(10-docker.sh 15-kind.sh 17-act.sh 20-base-image.sh 30-k8s-binaries.sh 40-images.sh 45-storage.sh 50-node-image.sh)
background=(60-python-base.sh)
selected() {
  [ "$#" -gt 1 ] || return 0
  local s="$1"; shift
  for p in "$@"; do case "$s" in "$p"*) return 0 ;; esac; done
  return 1
}
run_step() {
  local t0; t0=$(date +%s)
  log "== $1"
  bash "$HERE/$1"
  log "== $1 done in $(( $(date +%s) - t0 ))s"
}
total_start=$(date +%s)
bg_pids=()
for s in "${steps[@]}"; do
  selected "$s" "$@" || continue
  run_step "$s"
  if [ "$s" = 10-docker.sh ]; then   # docker is up: start the background steps
    for b in "${background[@]}"; do
      selected "$b" "$@" || continue
      mkdir -p "$LABKIT_CACHE/logs"
      run_step "$b" > "$LABKIT_CACHE/logs/$b.log" 2>&1 &
      bg_pids+=("$!:$b")
    done
  fi
done
for b in "${background[@]}"; do   # background steps asked for without 10-docker.sh
  selected "$b" "$@" || continue
  [ "${#bg_pids[@]}" -gt 0 ] || run_step "$b"
done
for pb in "${bg_pids[@]}"; do
  pid="${pb%%:*}"; b="${pb#*:}"
  if wait "$pid"; then cat "$LABKIT_CACHE/logs/$b.log" >&2; else cat "$LABKIT_CACHE/logs/$b.log" >&2; die "$b failed"; fi
done
log "prepare done in $(( $(date +%s) - total_start ))s; cache $LABKIT_CACHE ($(du -sh "$LABKIT_CACHE" | cut -f1))"
log "node image: labkit/kind-node:$K8S_VERSION   kind: $BIN/kind   kubectl: $LABKIT_CACHE/k8s/$K8S_VERSION/bin/kubectl"
