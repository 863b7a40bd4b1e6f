#!/usr/bin/env bash
# Container images the node needs, built locally (no registry): control-plane images from the
# Go-built Kubernetes binaries, etcd, CoreDNS, pause, and a minimal Debian image for kube-proxy.
# Each is tagged with the exact name kubeadm expects and saved as a docker-archive tar in
# $LABKIT_CACHE/images/ for import into the node's containerd.
. "$(dirname "$0")/lib.sh"
KBIN="$LABKIT_CACHE/k8s/$K8S_VERSION/bin"
IMGDIR="$LABKIT_CACHE/images/$K8S_VERSION"
mkdir -p "$IMGDIR"
REG=registry.k8s.io

# --- extra binaries -----------------------------------------------------------------
if [ ! -x "$BIN/etcd" ]; then
  log "building etcd $ETCD_VERSION"
  W="$LABKIT_CACHE/etcd-build"; mkdir -p "$W"
  printf 'module labkit.local/etcdbuild\n\ngo 1.24\n\nrequire go.etcd.io/etcd/server/v3 %s\n' "$ETCD_VERSION" > "$W/go.mod"
  printf '//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' > "$W/tools.go"
  (cd "$W" && heavy go mod tidy && heavy go build -trimpath -ldflags "-s -w" -o "$BIN/etcd.tmp" go.etcd.io/etcd/server/v3)
  mv "$BIN/etcd.tmp" "$BIN/etcd"
fi
if [ ! -x "$BIN/coredns" ]; then
  # CoreDNS with only the plugins kubeadm's Corefile (and common lab edits) use: the full plugin
  # set drags in every cloud SDK (route53, azure, clouddns, ...) and triples the build time.
  log "building coredns $COREDNS_VERSION (kubernetes plugin set)"
  W="$LABKIT_CACHE/coredns-build"; mkdir -p "$W"
  printf 'module labkit.local/corednsbuild\n\ngo 1.23.0\n\nrequire github.com/coredns/coredns %s\n' "$COREDNS_VERSION" > "$W/go.mod"
  {
    printf 'package main\n\nimport (\n\t_ "github.com/coredns/caddy/onevent"\n'
    for p in errors log health ready kubernetes metrics forward cache loop reload loadbalance hosts rewrite template whoami debug bind any; do
      printf '\t_ "github.com/coredns/coredns/plugin/%s"\n' "$p"
    done
    printf '\t"github.com/coredns/coredns/coremain"\n)\n\nfunc main() { coremain.Run() }\n'
  } > "$W/main.go"
  (cd "$W" && heavy go mod tidy && heavy go build -trimpath -ldflags "-s -w" -o "$BIN/coredns.tmp" .)
  mv "$BIN/coredns.tmp" "$BIN/coredns"
fi
if [ ! -x "$BIN/pause" ]; then
  log "building pause $PAUSE_VERSION (static C, from the kubernetes module)"
  KSRC="$(cd "$LABKIT_CACHE/k8s/$K8S_VERSION/mod" && go list -m -f '{{.Dir}}' k8s.io/kubernetes)"
  gcc -Os -Wall -Werror -static -DVERSION="v$PAUSE_VERSION-labkit" -o "$BIN/pause" "$KSRC/build/pause/linux/pause.c"
  strip "$BIN/pause"
fi

[ "${BINARIES_ONLY:-}" = 1 ] && exit 0

# --- image helpers ------------------------------------------------------------------------
# scratch_image IMAGE ENTRYPOINT_JSON FILE:DEST...
scratch_image() {
  local img="$1" ep="$2"; shift 2
  image_exists "$img" && return 0
  local ctx; ctx="$(mktemp -d)"
  { echo "FROM scratch"
    echo "ENV PATH=/usr/local/bin:/usr/bin:/bin"
    for fd in "$@"; do cp "${fd%%:*}" "$ctx/$(basename "${fd%%:*}")"; echo "COPY $(basename "${fd%%:*}") ${fd#*:}"; done
    [ -n "$ep" ] && echo "ENTRYPOINT $ep"
  } > "$ctx/Dockerfile"
  log "docker build $img"
  DOCKER_BUILDKIT=0 docker build -q -t "$img" "$ctx" >/dev/null
  rm -rf "$ctx"
}
save_image() { # save_image IMAGE FILE
  [ -s "$2" ] && return 0
  docker save "$1" -o "$2.tmp" && mv "$2.tmp" "$2"
}

# a minimal Debian root for images that need a userland (kube-proxy needs iptables/conntrack)
DEB_IMG="labkit/debian-iptables:$DEBIAN_SUITE"
if ! image_exists "$DEB_IMG"; then
  R="$LABKIT_CACHE/rootfs/debian-iptables-$DEBIAN_SUITE"
  if [ ! -f "$R/.debootstrap-done" ]; then
    rm -rf "$R"; mkdir -p "$R" "$LABKIT_CACHE/debs"
    log "debootstrap $DEBIAN_SUITE (minbase + iptables) -> $R"
    heavy debootstrap --variant=minbase --cache-dir="$LABKIT_CACHE/debs" --include=iptables,conntrack,ipset,kmod,ca-certificates \
      "$DEBIAN_SUITE" "$R" "$DEBIAN_MIRROR" > "$LABKIT_CACHE/debootstrap-debian-iptables.log" 2>&1 || die "debootstrap failed"
    chroot "$R" sh -c 'apt-get clean; rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin'
    touch "$R/.debootstrap-done"
  fi
  tar --numeric-owner --exclude=./.debootstrap-done -C "$R" -c . | docker import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' - "$DEB_IMG" >/dev/null
fi

V="$K8S_VERSION"
for c in kube-apiserver kube-controller-manager kube-scheduler; do
  scratch_image "$REG/$c:$V" "[\"/usr/local/bin/$c\"]" "$KBIN/$c:/usr/local/bin/$c"
done
if ! image_exists "$REG/kube-proxy:$V"; then
  ctx="$(mktemp -d)"; cp "$KBIN/kube-proxy" "$ctx/kube-proxy.real"; cp "$OFFLINE_DIR/files/kube-proxy-wrapper.sh" "$ctx/kube-proxy"; chmod 0755 "$ctx/kube-proxy" "$ctx/kube-proxy.real"
  printf 'FROM %s\nCOPY kube-proxy.real /usr/local/bin/kube-proxy.real\nCOPY kube-proxy /usr/local/bin/kube-proxy\nENTRYPOINT ["/usr/local/bin/kube-proxy"]\n' "$DEB_IMG" > "$ctx/Dockerfile"
  log "docker build $REG/kube-proxy:$V"
  DOCKER_BUILDKIT=0 docker build -q -t "$REG/kube-proxy:$V" "$ctx" >/dev/null; rm -rf "$ctx"
fi
scratch_image "$REG/etcd:$ETCD_IMAGE_TAG" '["/usr/local/bin/etcd"]' "$BIN/etcd:/usr/local/bin/etcd"
scratch_image "$REG/coredns/coredns:$COREDNS_VERSION" '["/coredns"]' "$BIN/coredns:/coredns"
scratch_image "$REG/pause:$PAUSE_VERSION" '["/pause"]' "$BIN/pause:/pause"

for img in "$REG/kube-apiserver:$V" "$REG/kube-controller-manager:$V" "$REG/kube-scheduler:$V" "$REG/kube-proxy:$V" \
           "$REG/etcd:$ETCD_IMAGE_TAG" "$REG/coredns/coredns:$COREDNS_VERSION" "$REG/pause:$PAUSE_VERSION"; do
  f="$IMGDIR/$(echo "${img#"$REG"/}" | tr '/:' '__').tar"
  save_image "$img" "$f"
done
log "images in $IMGDIR: $(du -sh "$IMGDIR" | cut -f1)"
