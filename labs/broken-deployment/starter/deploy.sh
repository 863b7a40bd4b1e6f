#!/usr/bin/env bash
# Rebuild churn-api's image from app/ (tag: churn-api:<app/VERSION>), load it into the lab's
# kind cluster (no registry involved), and apply every manifest in k8s/.
set -euo pipefail
cd "$(dirname "$0")"
. .labkit/env
tag="churn-api:$(tr -d '[:space:]' < app/VERSION)"
docker build -t "$tag" --build-arg SERVING_BASE=labkit/churn-serving-base:0.1.0 app
kind load docker-image "$tag" --name labkit
kubectl apply -f k8s/
