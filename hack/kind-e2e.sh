#!/usr/bin/env bash
# End-to-end on a real cluster: kind + the Helm chart + the fake provider, then the `kind`-tagged
# Go tests (test/kind) against it. Needs docker and kind; it cannot run where no Docker engine
# runs (the project's CI machines), which is why `make test` covers everything else with envtest
# and processes.
#
#   hack/kind-e2e.sh            create the cluster (if missing), install, test
#   KEEP_CLUSTER=1 ...          leave the cluster running afterwards
#   CLUSTER=name ...            kind cluster name (default llm-gateway-e2e)
set -euo pipefail
cd "$(dirname "$0")/.."

cluster=${CLUSTER:-llm-gateway-e2e}
ns=llm-gateway
image=llm-gateway:kind
helm() { go tool -modfile=hack/helm/go.mod helm "$@"; }
log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

for bin in docker kind kubectl; do
	command -v "$bin" >/dev/null || { echo "$bin is required" >&2; exit 1; }
done

if ! kind get clusters | grep -qx "$cluster"; then
	log "creating kind cluster $cluster"
	kind create cluster --name "$cluster" --wait 120s
fi
trap '[[ -n "${KEEP_CLUSTER:-}" ]] || kind delete cluster --name "$cluster"' EXIT
kubectl config use-context "kind-$cluster" >/dev/null

log "building $image"
docker build -t "$image" .
kind load docker-image "$image" --name "$cluster"

log "installing the chart (2 operator replicas, 3 gateway pods, in-cluster Redis)"
kubectl create namespace "$ns" --dry-run=client -o yaml | kubectl apply -f -
helm upgrade --install llm-gateway charts/llm-gateway --namespace "$ns" --wait --timeout 5m \
	--set image.repository=llm-gateway --set image.tag=kind --set image.pullPolicy=Never \
	--set redis.deploy=true --set redis.image=redis:7-alpine \
	--set gateway.autoscaling.enabled=false --set gateway.replicas=3 \
	--set gateway.drainTimeout=30s

log "fake provider and the dev custom resources"
kubectl -n "$ns" apply -f hack/kind/fakeprovider.yaml
kubectl -n "$ns" rollout status deploy/fakeprovider --timeout 120s
for f in hack/dev/*.yaml; do
	sed "s#http://127.0.0.1:8300#http://fakeprovider.$ns.svc:8300#g" "$f" | kubectl -n "$ns" apply -f -
done
kubectl -n "$ns" rollout status deploy/llm-gateway-gateway --timeout 180s

log "port-forwarding the gateway"
kubectl -n "$ns" port-forward svc/llm-gateway-gateway 18080:80 >/dev/null 2>&1 &
pf=$!
trap 'kill $pf 2>/dev/null; [[ -n "${KEEP_CLUSTER:-}" ]] || kind delete cluster --name "$cluster"' EXIT
for _ in $(seq 30); do curl -sf -o /dev/null http://127.0.0.1:18080/v1/models -H 'authorization: Bearer sk-llm-gateway-dev' && break; sleep 1; done

log "running test/kind"
KIND_GATEWAY_URL=http://127.0.0.1:18080 KIND_NAMESPACE=$ns \
	go test -tags kind -count=1 -v ./test/kind/
