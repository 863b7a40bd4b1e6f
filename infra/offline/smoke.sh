#!/usr/bin/env bash
# End-to-end check of the offline toolchain: create a kind cluster from the local node
# image, wait for Ready, build an image FROM the local Python base, `kind load` it, run it
# as a pod, print timings and memory, delete the cluster (KEEP=1 keeps it).
. "$(dirname "$0")/lib.sh"
NAME="${CLUSTER_NAME:-labkit-smoke}"
NODE_IMAGE="${NODE_IMAGE:-labkit/kind-node:$K8S_VERSION}"
PY="${PYTHON_BASE_IMAGE:-labkit/python:3.11-slim}"
KUBECTL="$LABKIT_CACHE/k8s/$K8S_VERSION/bin/kubectl"
KCFG="$LABKIT_CACHE/kubeconfig-$NAME"
CFG="$OFFLINE_DIR/../kind/cluster.yaml"
t() { date +%s.%N; }
el() { printf '%.1f' "$(echo "$(t) - $1" | bc)"; }
cleanup() { [ -n "${KEEP:-}" ] || kind delete cluster --name "$NAME" >/dev/null 2>&1 || true; }
trap cleanup EXIT
kind delete cluster --name "$NAME" >/dev/null 2>&1 || true
s=$(t)
kind create cluster --name "$NAME" --image "$NODE_IMAGE" --config "$CFG" --kubeconfig "$KCFG" --wait 5m
log "kind create cluster (to Ready, --wait) took $(el "$s")s"
K() { "$KUBECTL" --kubeconfig "$KCFG" "$@"; }
K get nodes -o wide
s=$(t)
K -n kube-system wait --for=condition=Ready pod --all --timeout=180s
log "all kube-system pods Ready after $(el "$s")s more"
K get pods -A -o wide
ctx="$(mktemp -d)"
cat > "$ctx/Dockerfile" <<'DOCKER'
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}
COPY app.py /app.py
CMD ["python", "-u", "/app.py"]
DOCKER
cat > "$ctx/app.py" <<'PY'
import http.server, socketserver
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"hello from labkit\n")
print("serving on 8080", flush=True)
socketserver.TCPServer(("", 8080), H).serve_forever()
PY
s=$(t)
DOCKER_BUILDKIT=0 docker build -q --build-arg BASE_IMAGE="$PY" -t labkit/smoke-app:dev "$ctx" >/dev/null
log "docker build smoke app: $(el "$s")s"; s=$(t)
kind load docker-image labkit/smoke-app:dev --name "$NAME"
log "kind load docker-image: $(el "$s")s"; s=$(t)
K create deployment smoke --image=labkit/smoke-app:dev --port=8080
K patch deployment smoke --type=json -p '[{"op":"add","path":"/spec/template/spec/containers/0/imagePullPolicy","value":"Never"}]'
K rollout status deployment/smoke --timeout=120s
K expose deployment smoke --type=NodePort --port=8080 --name=smoke
K patch service smoke --type=json -p '[{"op":"replace","path":"/spec/ports/0/nodePort","value":30080}]'
log "deployment rolled out: $(el "$s")s"
K run curl --image=labkit/smoke-app:dev --image-pull-policy=Never --restart=Never --rm -i --command -- \
  python -c 'import urllib.request;print(urllib.request.urlopen("http://smoke.default.svc.cluster.local:8080").read().decode())' || log "in-cluster DNS/service check FAILED"
for i in $(seq 20); do curl -fsS http://127.0.0.1:30080/ && break; sleep 1; done || log "NodePort via extraPortMappings FAILED"
docker stats --no-stream --format '{{.Name}} mem {{.MemUsage}} cpu {{.CPUPerc}}' "$NAME-control-plane"
rm -rf "$ctx"
