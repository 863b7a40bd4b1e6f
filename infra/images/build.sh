#!/usr/bin/env bash
# Build labkit's container images from a host wheelhouse (no package index inside the build).
#
#   infra/images/build.sh              # labkit/platform:0.1.0 (MLflow + Prefect servers)
#   infra/images/build.sh grader       # labkit/grader:0.1.0 (labkit + the ML stack, for reviewers)
#   infra/images/build.sh all
#   BASE_IMAGE=labkit/python:3.11-slim infra/images/build.sh all    # offline: no registry
#
# Idempotent: the wheelhouse (infra/images/wheelhouse/, git-ignored) is downloaded with the
# host's pip only when missing (delete it, or WHEELHOUSE_REFRESH=1, to refresh); docker's
# layer cache makes an unchanged rebuild take seconds. The labkit wheel itself is rebuilt
# every time the grader is built, so the image always carries the working tree's labkit.
# The host must run CPython 3.11 on linux x86_64 (glibc), like the images.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
WH="$HERE/wheelhouse"
BASE_IMAGE="${BASE_IMAGE:-python:3.11-slim}"
PLATFORM_IMAGE="${PLATFORM_IMAGE:-labkit/platform:0.1.0}"
GRADER_IMAGE="${GRADER_IMAGE:-labkit/grader:0.1.0}"
PY="${PYTHON:-python3}"
NICE=(nice -n 10)
log() { printf '[build %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

# The platform pins (kept in step with pyproject's `local` extra): prefect 3.8.8's server
# crashes at start with fastapi >= 0.151; evidently does not import with pandas 3.
PLATFORM_REQS=("mlflow==3.17.2" "prefect==3.8.8" "fastapi>=0.115,<0.151" "pandas<3")

wheelhouse() {
  if [ -f "$WH/.complete" ] && [ -z "${WHEELHOUSE_REFRESH:-}" ]; then
    log "wheelhouse present: $WH ($(du -sh "$WH" | cut -f1))"; return
  fi
  mkdir -p "$WH"; rm -f "$WH/.complete"
  # labkit's own requirements + its `local` extra, read from pyproject.toml (one source of truth)
  mapfile -t LABKIT_REQS < <("$PY" - "$ROOT/pyproject.toml" <<'PYEOF'
import sys, tomllib
p = tomllib.load(open(sys.argv[1], "rb"))["project"]
print(*p["dependencies"], *p["optional-dependencies"]["local"], sep="\n")
PYEOF
)
  log "pip download -> $WH (${#LABKIT_REQS[@]} labkit requirements + platform pins)"
  local t0=$SECONDS
  "${NICE[@]}" "$PY" -m pip download --disable-pip-version-check -q -d "$WH" \
      "${PLATFORM_REQS[@]}" "${LABKIT_REQS[@]}"
  # Markers are resolved for the host's interpreter. Debian bookworm's python3 (the offline
  # base) is 3.11.2: redis asks for async-timeout when python_full_version < "3.11.3", and
  # `pip download --python-version` does not override python_full_version. Fetch it too.
  # (Checked: it is the only python_full_version marker in this wheelhouse that differs.)
  "${NICE[@]}" "$PY" -m pip download --disable-pip-version-check -q -d "$WH" --no-deps \
      "async-timeout>=4.0.3"
  # pip download keeps sdists as they are; the image has no compiler and no index: wheel them here
  local s
  for s in "$WH"/*.tar.gz "$WH"/*.zip; do
    [ -e "$s" ] || continue
    log "building a wheel from $(basename "$s")"
    "${NICE[@]}" "$PY" -m pip wheel -q --no-deps -w "$WH" "$s" && rm -f "$s"
  done
  touch "$WH/.complete"
  log "wheelhouse ready in $((SECONDS - t0)) s: $(ls "$WH"/*.whl | wc -l) wheels, $(du -sh "$WH" | cut -f1)"
}

build_platform() {
  log "docker build $PLATFORM_IMAGE (BASE_IMAGE=$BASE_IMAGE)"
  local t0=$SECONDS
  "${NICE[@]}" docker build -t "$PLATFORM_IMAGE" --build-arg "BASE_IMAGE=$BASE_IMAGE" \
      -f "$HERE/platform/Dockerfile" "$HERE"
  log "built $PLATFORM_IMAGE in $((SECONDS - t0)) s"
}

build_grader() {
  rm -f "$WH"/labkit_mlops-*.whl "$WH"/labkit-*.whl
  "${NICE[@]}" "$PY" -m pip wheel -q "$ROOT" --no-deps -w "$WH"
  log "docker build $GRADER_IMAGE (BASE_IMAGE=$BASE_IMAGE)"
  local t0=$SECONDS
  "${NICE[@]}" docker build -t "$GRADER_IMAGE" --build-arg "BASE_IMAGE=$BASE_IMAGE" \
      -f "$ROOT/grader/Dockerfile" "$HERE"
  log "built $GRADER_IMAGE in $((SECONDS - t0)) s"
}

wheelhouse
case "${1:-platform}" in
  platform) build_platform ;;
  grader) build_grader ;;
  all) build_platform; build_grader ;;
  wheelhouse) ;;
  *) echo "usage: $0 [platform|grader|all|wheelhouse]" >&2; exit 2 ;;
esac
