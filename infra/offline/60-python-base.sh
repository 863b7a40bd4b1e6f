#!/usr/bin/env bash
# A stand-in for python:3.11-slim, built without a registry: Debian bookworm's Python 3.11
# + pip + venv. Lab Dockerfiles take `ARG BASE_IMAGE=python:3.11-slim`; offline builds pass
# --build-arg BASE_IMAGE=labkit/python:3.11-slim. pip installs into the system like the
# official image (the PEP 668 marker is removed). Packages go in from a host wheelhouse.
. "$(dirname "$0")/lib.sh"
IMG="${PYTHON_BASE_IMAGE:-labkit/python:3.11-slim}"
HASH="$(inputs_hash 60-python-base.sh)"
if image_restore "$IMG" "$HASH"; then log "$IMG ($HASH): present"; exit 0; fi
R="$LABKIT_CACHE/rootfs/python-$DEBIAN_SUITE"
if [ ! -f "$R/.debootstrap-done" ]; then
  rm -rf "$R"; mkdir -p "$R" "$LABKIT_CACHE/debs"
  log "debootstrap $DEBIAN_SUITE (minbase + python3) -> $R"
  heavy debootstrap --variant=minbase --cache-dir="$LABKIT_CACHE/debs" \
    --include=python3,python3-pip,python3-venv,ca-certificates,tzdata,netbase \
    "$DEBIAN_SUITE" "$R" "$DEBIAN_MIRROR" > "$LABKIT_CACHE/debootstrap-python.log" 2>&1 || die "debootstrap failed"
  chroot "$R" sh -ec '
    ln -sf /usr/bin/python3 /usr/local/bin/python
    ln -sf /usr/bin/pip3 /usr/local/bin/pip
    rm -f /usr/lib/python3*/EXTERNALLY-MANAGED
    apt-get clean; rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /usr/share/doc/* /usr/share/man/*
    find / -xdev -name __pycache__ -type d -prune -exec rm -rf {} +'
  touch "$R/.debootstrap-done"
fi
tar --numeric-owner --exclude=./.debootstrap-done -C "$R" -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' --change 'ENV PIP_DISABLE_PIP_VERSION_CHECK=1' \
  --change 'CMD ["python3"]' --change "LABEL labkit.inputs=$HASH" - "$IMG" >/dev/null
image_persist "$IMG" "$HASH"
log "built $IMG ($(docker image inspect -f '{{.Size}}' "$IMG" | numfmt --to=iec)): $(docker run --rm "$IMG" python --version 2>&1)"
