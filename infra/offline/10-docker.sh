#!/usr/bin/env bash
# A running Docker engine from Debian's docker.io, with a runc wrapper so that privileged
# containers (kind nodes) start on hosts lacking some capabilities. Idempotent.
. "$(dirname "$0")/lib.sh"
need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v jq >/dev/null || need+=(jq)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v gcc >/dev/null || need+=(gcc libc6-dev)
if [ "${#need[@]}" -gt 0 ]; then
  log "apt-get install ${need[*]}"
  [ -n "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null | head -1)" ] || apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
install -m 0755 "$OFFLINE_DIR/files/labkit-runc" /usr/local/sbin/labkit-runc
mkdir -p /etc/docker /var/log/labkit
want='{
  "runtimes": { "labkit-runc": { "path": "/usr/local/sbin/labkit-runc" } },
  "default-runtime": "labkit-runc"
}'
changed=0
if [ "$(cat /etc/docker/daemon.json 2>/dev/null)" != "$want" ]; then
  printf '%s\n' "$want" > /etc/docker/daemon.json; changed=1
fi
if pid="$(pgrep -x dockerd)"; then
  if [ "$changed" = 1 ]; then
    log "restarting dockerd ($pid) for the new daemon.json"
    kill "$pid"; for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  elif docker info >/dev/null 2>&1; then
    log "dockerd running"; exit 0
  fi
fi
if ! pgrep -x dockerd >/dev/null; then
  log "starting dockerd (log: /var/log/labkit/dockerd.log)"
  nohup dockerd >> /var/log/labkit/dockerd.log 2>&1 &
fi
for _ in $(seq 120); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
docker info --format 'docker {{.ServerVersion}}, {{.Driver}}, cgroup {{.CgroupDriver}} v{{.CgroupVersion}}, default runtime {{.DefaultRuntime}}' >&2
