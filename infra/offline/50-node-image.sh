#!/usr/bin/env bash
# Assemble the kind node image the way `kind build node-image` does (docker run the base,
# copy kubeadm/kubelet/kubectl in, import the component images into the node's containerd,
# docker commit) but with every image coming from local tars: `kind build node-image`
# itself always `ctr content fetch`es etcd/coredns/pause/kindnetd/local-path from a registry.
# Output: docker image labkit/kind-node:$K8S_VERSION
. "$(dirname "$0")/lib.sh"
NODE_IMAGE="${NODE_IMAGE:-labkit/kind-node:$K8S_VERSION}"
BASE="labkit/kind-base:${DEBIAN_SUITE}-${KIND_VERSION}"
HASH="$(inputs_hash 20-base-image.sh 40-images.sh 45-storage.sh 50-node-image.sh 'files/*')"
if [ -z "${FORCE:-}" ] && image_restore "$NODE_IMAGE" "$HASH"; then log "$NODE_IMAGE ($HASH): present"; exit 0; fi
image_exists "$BASE" || die "missing $BASE (run 20-base-image.sh)"
KBIN="$LABKIT_CACHE/k8s/$K8S_VERSION/bin"
IMGDIR="$LABKIT_CACHE/images/$K8S_VERSION"
CID="labkit-node-build-$$"
trap 'docker rm -f -v "$CID" >/dev/null 2>&1 || true' EXIT
docker run -d --name "$CID" --entrypoint=sleep --security-opt seccomp=unconfined --privileged "$BASE" infinity >/dev/null
x() { docker exec -i "$CID" "$@"; }
for b in kubeadm kubelet kubectl; do
  docker cp "$KBIN/$b" "$CID:/usr/bin/$b"
  x chown root:root "/usr/bin/$b"; x chmod 0755 "/usr/bin/$b"
done
printf '%s' "$K8S_VERSION" | x sh -c 'cat > /kind/version'
# pause image pinned in containerd's CRI config must be the one we ship
x sed -i "s#sandbox_image = .*#sandbox_image = \"registry.k8s.io/pause:$PAUSE_VERSION\"#" /etc/containerd/config.toml
x mkdir -p /kind/manifests /etc/cni/net.d
# CNI: kindnetd's source is not on the Go module proxy, so the node carries a static bridge
# config for kind's default podSubnet (single node). kind still applies
# /kind/manifests/default-cni.yaml: give it a harmless object.
x sh -c 'cat > /etc/cni/net.d/10-labkit-bridge.conflist' < "$OFFLINE_DIR/files/10-labkit-bridge.conflist"
x sh -c 'cat > /kind/manifests/default-cni.yaml' < "$OFFLINE_DIR/files/default-cni.yaml"
if [ -f "$IMGDIR/storage/default-storage.yaml" ]; then
  x sh -c 'cat > /kind/manifests/default-storage.yaml' < "$IMGDIR/storage/default-storage.yaml"
else
  x sh -c 'cat > /kind/manifests/default-storage.yaml' < "$OFFLINE_DIR/files/default-storage-none.yaml"
fi
x bash -c 'nohup containerd > /tmp/containerd.log 2>&1 &'
for i in $(seq 30); do x ctr version >/dev/null 2>&1 && break; sleep 1; done
for t in "$IMGDIR"/*.tar "$IMGDIR"/storage/*.tar; do
  [ -f "$t" ] || continue
  log "import $(basename "$t")"
  x ctr -n k8s.io images import --all-platforms --no-unpack --digests - < "$t" >/dev/null
done
x ctr -n k8s.io images ls -q | sed 's/^/  /' >&2
x pkill containerd || true
sleep 1
x rm -rf /tmp/containerd.log /var/lib/containerd/io.containerd.metadata.v1.bolt/*.lock 2>/dev/null || true
docker commit \
  --change 'ENTRYPOINT [ "/usr/local/bin/entrypoint", "/sbin/init" ]' \
  --change 'ENV HTTP_PROXY="" HTTPS_PROXY="" NO_PROXY=""' \
  --change "LABEL labkit.inputs=$HASH" \
  "$CID" "$NODE_IMAGE" >/dev/null
[ -n "${NO_SAVE:-}" ] || image_persist "$NODE_IMAGE" "$HASH"
log "built $NODE_IMAGE ($(docker image inspect -f '{{.Size}}' "$NODE_IMAGE" | numfmt --to=iec))"
