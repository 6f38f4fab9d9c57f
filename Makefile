# llm-gateway. The two commands a new machine needs: `make run` and `make test`.
SHELL := /usr/bin/env bash
GO    ?= go
BIN   := bin

# Code generators run from the tool module in hack/tools (`go tool`), pinned there.
CONTROLLER_GEN := $(GO) tool -modfile=hack/tools/go.mod controller-gen

.PHONY: all build generate manifests test test-short run vet fmt envtest bench load clean

all: build

build: ## bin/operator, bin/gateway, bin/fakeprovider
	$(GO) build -o $(BIN)/operator .
	$(GO) build -o $(BIN)/gateway ./dataplane/cmd/gateway
	$(GO) build -o $(BIN)/fakeprovider ./test/fakeprovider/cmd/fakeprovider

generate: ## deepcopy functions for api/
	$(CONTROLLER_GEN) object:headerFile=hack/boilerplate.go.txt paths=./api/...

manifests: ## CRDs and RBAC under config/
	$(CONTROLLER_GEN) crd rbac:roleName=llm-gateway-operator paths=./api/... paths=./controllers/... \
		output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac
	rm -f charts/llm-gateway/crds/*.yaml && cp config/crd/bases/*.yaml charts/llm-gateway/crds/

envtest: ## builds (or finds) kube-apiserver and etcd; prints KUBEBUILDER_ASSETS
	@hack/envtest-binaries.sh

test: ## every test: unit, envtest, process-level e2e
	@command -v redis-server >/dev/null || { echo "redis-server is required (apt-get install redis-server)"; exit 1; }
	KUBEBUILDER_ASSETS="$$(hack/envtest-binaries.sh)" $(GO) test -count=1 -timeout 30m ./...

test-short: ## unit tests only (no envtest, no processes)
	$(GO) test -short ./...

vet:
	$(GO) vet ./...

fmt:
	gofmt -l -w $$(git ls-files '*.go')

run: build ## gateway + fake provider, standalone
	hack/run.sh

load: ## load characterization against the fake provider (docs/load.md); LOAD_FLAGS=-quick for a smoke run
	$(GO) build -o $(BIN)/gateway ./dataplane/cmd/gateway
	$(GO) build -o $(BIN)/fakeprovider ./test/fakeprovider/cmd/fakeprovider
	$(GO) build -o $(BIN)/load ./test/load/cmd/load
	$(BIN)/load -bin $(BIN) -out .run/load $(LOAD_FLAGS)

clean:
	rm -rf $(BIN) .run
