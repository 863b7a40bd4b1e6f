#!/usr/bin/env bash
# kind base image without a registry: debootstrap a Debian rootfs with systemd + Debian's
# containerd/runc/CNI plugins, add kind's own base files (entrypoint, units, containerd
# config) from the pinned kind module, and `docker import` it.
# Output: docker image labkit/kind-base:$DEBIAN_SUITE-$KIND_VERSION
. "$(dirname "$0")/lib.sh"
IMG="labkit/kind-base:${DEBIAN_SUITE}-${KIND_VERSION}"
if image_exists "$IMG"; then log "$IMG: present"; exit 0; fi
command -v debootstrap >/dev/null || { log "apt-get install debootstrap"; DEBIAN_FRONTEND=noninteractive apt-get install -y debootstrap >/dev/null; }
KIND_SRC="$(cd "$LABKIT_CACHE" && GOFLAGS= go mod download -json "sigs.k8s.io/kind@$KIND_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
[ -d "$KIND_SRC/images/base/files" ] || die "kind source not found"
CRICTL="$BIN/crictl"
if [ ! -x "$CRICTL" ]; then
  log "building crictl $CRICTL_VERSION"
  GOBIN="$BIN" heavy go install "sigs.k8s.io/cri-tools/cmd/crictl@$CRICTL_VERSION"
fi
ROOTFS="$LABKIT_CACHE/rootfs/kind-base-$DEBIAN_SUITE"
PKGS=systemd,dbus,conntrack,iptables,nftables,iproute2,ethtool,util-linux,mount,kmod,libseccomp2,pigz,fuse-overlayfs,bash,ca-certificates,curl,jq,procps,containerd,runc,containernetworking-plugins,e2fsprogs,socat
if [ ! -f "$ROOTFS/.debootstrap-done" ]; then
  rm -rf "$ROOTFS"; mkdir -p "$ROOTFS" "$LABKIT_CACHE/debs"
  log "debootstrap $DEBIAN_SUITE -> $ROOTFS"
  heavy debootstrap --variant=minbase --cache-dir="$LABKIT_CACHE/debs" --include="$PKGS" \
    "$DEBIAN_SUITE" "$ROOTFS" "$DEBIAN_MIRROR" > "$LABKIT_CACHE/debootstrap-kind-base.log" 2>&1 \
    || { tail -20 "$LABKIT_CACHE/debootstrap-kind-base.log"; die "debootstrap failed"; }
  touch "$ROOTFS/.debootstrap-done"
fi
F="$KIND_SRC/images/base/files"
R="$ROOTFS"
install -m 0755 "$F"/usr/local/bin/* "$R/usr/local/bin/"
mkdir -p "$R/kind/bin" "$R/LICENSES" "$R/etc/containerd" "$R/etc/default" "$R/etc/sysctl.d" \
  "$R/etc/systemd/system/kubelet.service.d" "$R/etc/kubernetes/manifests" "$R/opt/cni/bin"
install -m 0644 "$F/kind/README.txt" "$R/kind/"
install -m 0755 "$F"/kind/bin/* "$R/kind/bin/"
install -m 0644 "$F/etc/crictl.yaml" "$R/etc/"
install -m 0644 "$F"/etc/containerd/* "$R/etc/containerd/"
install -m 0644 "$F"/etc/default/* "$R/etc/default/"
install -m 0644 "$F"/etc/sysctl.d/* "$R/etc/sysctl.d/"
install -m 0644 "$F"/etc/systemd/system/*.service "$F"/etc/systemd/system/*.slice "$R/etc/systemd/system/"
install -m 0644 "$F"/etc/systemd/system/kubelet.service.d/* "$R/etc/systemd/system/kubelet.service.d/"
# Debian ships containerd/ctr/shim in /usr/bin and runc in /usr/sbin; kind's units expect /usr/local.
for b in containerd ctr containerd-shim-runc-v2; do ln -sf "/usr/bin/$b" "$R/usr/local/bin/$b"; done
# /usr/local/sbin/runc (first on containerd's PATH) is our wrapper around Debian's runc: see files/labkit-runc
install -m 0755 "$OFFLINE_DIR/files/labkit-runc" "$R/usr/local/sbin/runc"
install -m 0755 "$CRICTL" "$R/usr/local/bin/crictl"
for p in host-local loopback ptp portmap bridge; do cp -f "$R/usr/lib/cni/$p" "$R/opt/cni/bin/$p"; done
chroot "$R" /bin/bash -euo pipefail -c '
  find /lib/systemd/system/sysinit.target.wants/ -name "systemd-tmpfiles-setup.service" -delete
  rm -f /lib/systemd/system/multi-user.target.wants/* /etc/systemd/system/*.wants/* \
        /lib/systemd/system/local-fs.target.wants/* /lib/systemd/system/sockets.target.wants/*udev* \
        /lib/systemd/system/sockets.target.wants/*initctl* /lib/systemd/system/basic.target.wants/*
  grep -q "^ReadKMsg=no" /etc/systemd/journald.conf || echo "ReadKMsg=no" >> /etc/systemd/journald.conf
  ln -sf /usr/lib/systemd/systemd /sbin/init
  systemctl enable kubelet.service containerd.service undo-mount-hacks.service
  systemctl mask systemd-binfmt.service
  ctr oci spec | jq ".hooks.createContainer[.hooks.createContainer| length] |= . + {\"path\": \"/kind/bin/mount-product-files.sh\"}" | jq "del(.process.rlimits)" > /etc/containerd/cri-base.json
  apt-get clean; rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/*.log
'
log "docker import $IMG"
# docker 20.10's import/commit refuse STOPSIGNAL: import, then set it with a one-line build.
tar --numeric-owner --exclude=./.debootstrap-done -C "$R" -c . | docker import - "$IMG-rootfs" >/dev/null
printf 'FROM %s\nENV container=docker\nSTOPSIGNAL SIGRTMIN+3\nENTRYPOINT [ "/usr/local/bin/entrypoint", "/sbin/init" ]\n' "$IMG-rootfs" \
  | DOCKER_BUILDKIT=0 docker build -q -t "$IMG" - >/dev/null
docker rmi "$IMG-rootfs" >/dev/null
log "built $IMG ($(docker image inspect -f '{{.Size}}' "$IMG" | numfmt --to=iec))"
