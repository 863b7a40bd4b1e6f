#!/usr/bin/env bash
# The pinned nektos/act binary, from the Go module proxy (act's documented `go install`).
# training-cicd plays the candidate's workflow on it. Needs Go only (no root, no Docker):
# `.ci/run` calls this step alone.
. "$(dirname "$0")/lib.sh"
command -v go >/dev/null || die "Go is not installed: act comes from the Go module proxy (install Go >= 1.24)"
if [ -x "$BIN/act" ] && "$BIN/act" --version | grep -q "version ${ACT_VERSION#v}$"; then log "act $ACT_VERSION: cached"; exit 0; fi
log "go install github.com/nektos/act@$ACT_VERSION"
GOBIN="$BIN" heavy go install "github.com/nektos/act@$ACT_VERSION"
"$BIN/act" --version >&2
