#!/usr/bin/env bash
# The pinned kind binary, from the Go module proxy (kind's documented `go install`).
. "$(dirname "$0")/lib.sh"
if [ -x "$BIN/kind" ] && "$BIN/kind" version | grep -q "^kind $KIND_VERSION "; then log "kind $KIND_VERSION: cached"; exit 0; fi
log "go install sigs.k8s.io/kind@$KIND_VERSION"
GOBIN="$BIN" heavy go install "sigs.k8s.io/kind@$KIND_VERSION"
"$BIN/kind" version >&2
