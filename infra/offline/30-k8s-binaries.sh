#!/usr/bin/env bash
# Build the Kubernetes binaries from the k8s.io/kubernetes Go module (no git, no registry).
# Output: $LABKIT_CACHE/k8s/$K8S_VERSION/bin/{kubeadm,kubelet,kubectl,kube-apiserver,...}
. "$(dirname "$0")/lib.sh"
V="$K8S_VERSION"
OUT="$LABKIT_CACHE/k8s/$V/bin"
COMPONENTS="${COMPONENTS:-kubeadm kubelet kubectl kube-apiserver kube-controller-manager kube-scheduler kube-proxy}"
mkdir -p "$OUT"
W="$LABKIT_CACHE/k8s/$V/mod"
mkdir -p "$W"
if [ ! -f "$W/go.sum" ]; then
  log "resolving k8s.io/kubernetes@$V"
  M="$(cd "$W" && go mod download -json "k8s.io/kubernetes@$V" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  [ -n "$M" ] || die "could not download k8s.io/kubernetes@$V"
  minor="v0.${V#v1.}"
  {
    printf 'module labkit.local/k8sbuild\n\ngo 1.24.0\n\nrequire k8s.io/kubernetes %s\n\nreplace (\n' "$V"
    sed -n '/^replace (/,/^)/p' "$M/go.mod" | awk -v v="$minor" '/=>/ {print "\t" $1 " => " $1 " " v}'
    printf ')\n'
  } > "$W/go.mod"
  {
    printf '//go:build tools\n\npackage tools\n\nimport (\n'
    for c in $COMPONENTS; do printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$c"; done
    printf ')\n'
  } > "$W/tools.go"
  (cd "$W" && heavy go mod tidy)
fi
major=1; minor_n="$(echo "$V" | cut -d. -f2)"
LDFLAGS="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  LDFLAGS="$LDFLAGS -X $pkg.gitVersion=$V -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor_n -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z -X $pkg.gitCommit=0000000000000000000000000000000000000000"
done
for c in $COMPONENTS; do
  if [ -x "$OUT/$c" ]; then log "$c: cached"; continue; fi
  log "building $c $V"
  s=$(date +%s)
  (cd "$W" && heavy go build -trimpath -ldflags "$LDFLAGS" -o "$OUT/$c.tmp" "k8s.io/kubernetes/cmd/$c")
  mv "$OUT/$c.tmp" "$OUT/$c"
  log "built $c in $(( $(date +%s) - s ))s ($(du -h "$OUT/$c" | cut -f1))"
done
"$OUT/kubeadm" version -o short
