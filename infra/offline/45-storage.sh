#!/usr/bin/env bash
# kind's default storage (StorageClass "standard", rancher local-path-provisioner), built
# locally: the provisioner from the Go module, the helper image = our minimal Debian
# (it only runs sh/mkdir/rm), and kind's own manifest extracted from the pinned kind source.
# Output: $LABKIT_CACHE/images/$K8S_VERSION/storage/{*.tar,default-storage.yaml}
. "$(dirname "$0")/lib.sh"
OUT="$LABKIT_CACHE/images/$K8S_VERSION/storage"
mkdir -p "$OUT"
[ -s "$OUT/default-storage.yaml" ] && [ -z "${FORCE:-}" ] && { log "storage: cached"; exit 0; }
KIND_SRC="$(cd "$LABKIT_CACHE" && GOFLAGS= go mod download -json "sigs.k8s.io/kind@$KIND_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
C="$KIND_SRC/pkg/build/nodeimage/const_storage.go"
prov="$(sed -n 's/^const storageProvisionerImage = "\(.*\)"$/\1/p' "$C")"
helper="$(sed -n 's/^const storageHelperImage = "\(.*\)"$/\1/p' "$C")"
[ -n "$prov" ] && [ -n "$helper" ] || die "cannot read image names from $C"
if [ ! -x "$BIN/local-path-provisioner" ]; then
  log "building local-path-provisioner $LOCAL_PATH_PROVISIONER_VERSION"
  GOBIN="$BIN" heavy go install -trimpath -ldflags "-s -w" "github.com/rancher/local-path-provisioner@$LOCAL_PATH_PROVISIONER_VERSION"
fi
DEB_IMG="labkit/debian-iptables:$DEBIAN_SUITE"
image_exists "$DEB_IMG" || die "missing $DEB_IMG (run 40-images.sh)"
if ! image_exists "$prov"; then
  ctx="$(mktemp -d)"; cp "$BIN/local-path-provisioner" "$ctx/"
  printf 'FROM scratch\nENV PATH=/usr/local/bin\nCOPY local-path-provisioner /usr/local/bin/local-path-provisioner\nENTRYPOINT ["/usr/local/bin/local-path-provisioner"]\n' > "$ctx/Dockerfile"
  DOCKER_BUILDKIT=0 docker build -q -t "$prov" "$ctx" >/dev/null; rm -rf "$ctx"
fi
docker tag "$DEB_IMG" "$helper"
docker save "$prov" -o "$OUT/local-path-provisioner.tar"
docker save "$helper" -o "$OUT/local-path-helper.tar"
# the manifest: the Go raw string between the backquotes, with the image constants filled in
awk '/^const defaultStorageManifest = `/ {on=1; next} on && /^`$/ {exit} on {print}' "$C" \
  | sed -e "s#\` + storageProvisionerImage + \`#$prov#g" -e "s#\` + storageHelperImage + \`#$helper#g" > "$OUT/default-storage.yaml.tmp"
grep -q '` +' "$OUT/default-storage.yaml.tmp" && die "unsubstituted template in storage manifest"
mv "$OUT/default-storage.yaml.tmp" "$OUT/default-storage.yaml"
log "storage images: $prov, $helper"
