# Image that holds /manager, /gateway and /exchange.
IMG ?= ghcr.io/insforge/integrations-operator:latest
# YEAR is substituted into the boilerplate header of generated files.
YEAR ?= 2026

# A dependency that wants a newer Go must fail loudly instead of downloading a toolchain.
export GOTOOLCHAIN := local
# One cgo setting for everything (tests, tools, envtest binaries) so the build cache is shared.
export CGO_ENABLED := 0

SHELL = /usr/bin/env bash -o pipefail
.SHELLFLAGS = -ec

LOCALBIN ?= $(CURDIR)/bin
$(LOCALBIN):
	mkdir -p "$(LOCALBIN)"

## Tool versions (tried together on Go 1.26; kustomize v5.8.3 needs Go 1.27).
CONTROLLER_TOOLS_VERSION ?= v0.23.0
KUSTOMIZE_VERSION ?= v5.8.2
CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen-$(CONTROLLER_TOOLS_VERSION)
KUSTOMIZE ?= $(LOCALBIN)/kustomize-$(KUSTOMIZE_VERSION)
HELM ?= $(LOCALBIN)/helm
CRD_REF_DOCS ?= $(LOCALBIN)/crd-ref-docs
SETUP_ENVTEST ?= $(LOCALBIN)/setup-envtest
# hack/build-envtest.sh finds (or fetches) the envtest binaries and prints their directory.
ENVTEST_ASSETS = SETUP_ENVTEST="$(SETUP_ENVTEST)" hack/build-envtest.sh

# Packages of the unit and integration tests (the e2e suite runs separately).
TEST_PACKAGES ?= ./...
GO_TEST_FLAGS ?= -timeout 20m

.PHONY: all
all: build

##@ General

.PHONY: help
help: ## Display this help.
	@awk 'BEGIN {FS = ":.*##"; printf "\nUsage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: controller-gen ## Generate the CRDs and the manager's ClusterRole from the markers (and their copies in the Helm chart and config/namespaced).
	"$(CONTROLLER_GEN)" rbac:roleName=manager-role crd paths="./api/...;./internal/controller/..." output:crd:artifacts:config=config/crd/bases
	@$(MAKE) --no-print-directory helm-chart namespaced-rbac

.PHONY: generate
generate: controller-gen crd-ref-docs ## Generate the DeepCopy methods and docs/api-reference.md.
	"$(CONTROLLER_GEN)" object:headerFile="hack/boilerplate.go.txt",year=$(YEAR) paths="./api/..."
	"$(CRD_REF_DOCS)" --source-path=api/v1alpha1 --config=hack/tools/crd-ref-docs/config.yaml \
		--renderer=markdown --output-path=docs/api-reference.md --log-level=WARN

.PHONY: fmt
fmt: ## Run gofmt on the code.
	gofmt -w $$(git ls-files '*.go' | grep -v '^hack/envtest/')

.PHONY: vet
vet: ## Run go vet.
	go vet ./...

.PHONY: verify-generated
verify-generated: manifests generate fmt ## Fail if generated or formatted files differ from what is committed.
	@if ! git diff --quiet --exit-code; then \
		echo "Generated or formatted files are out of date; run 'make manifests generate fmt' and commit:"; \
		git diff --stat; exit 1; fi

.PHONY: test
test: manifests generate vet envtest kustomize helm ## Run unit and integration tests (envtest control plane + real PostgreSQL).
	@assets="$$($(ENVTEST_ASSETS))"; \
	echo "KUBEBUILDER_ASSETS=$$assets"; \
	KUBEBUILDER_ASSETS="$$assets" go test $(GO_TEST_FLAGS) $(TEST_PACKAGES)

.PHONY: test-e2e
test-e2e: envtest geth kustomize ## Run the end-to-end suite: manager and gateway as real processes, envtest, PostgreSQL, geth --dev.
	@assets="$$($(ENVTEST_ASSETS))"; \
	KUBEBUILDER_ASSETS="$$assets" go test -tags=e2e -count=1 -timeout 30m -v ./internal/testutil/devchain/ ./test/e2e/

.PHONY: envtest
envtest: ## Put kube-apiserver and etcd into bin/k8s: kept if present, else the setup-envtest download, else built from source.
	@$(ENVTEST_ASSETS) >/dev/null

##@ Build

.PHONY: build
build: manifests generate vet ## Build the manager and token exchange binaries.
	go build -trimpath -o "$(LOCALBIN)/manager" ./cmd/manager
	go build -trimpath -o "$(LOCALBIN)/exchange" ./cmd/exchange

.PHONY: run
run: manifests generate ## Run the manager against the cluster of the current kubeconfig.
	go run ./cmd/manager

.PHONY: docker-build
docker-build: ## Build the image (needs a container engine).
	docker build -t "$(IMG)" .

# The overlay of config/ that build-installer builds: default (cluster-wide) or namespaced.
INSTALLER_OVERLAY ?= default

.PHONY: build-installer
build-installer: manifests generate kustomize ## Write dist/install.yaml (CRDs, RBAC, manager Deployment; INSTALLER_OVERLAY=namespaced for per-namespace Roles).
	mkdir -p dist
	rm -rf dist/.kustomize && cp -r config dist/.kustomize
	cd dist/.kustomize/manager && "$(KUSTOMIZE)" edit set image controller="$(IMG)"
	"$(KUSTOMIZE)" build dist/.kustomize/$(INSTALLER_OVERLAY) > dist/install.yaml
	rm -rf dist/.kustomize

CHART ?= charts/integrations-operator

.PHONY: helm-chart
helm-chart: ## Copy the generated CRDs and manager RBAC rules into the Helm chart.
	mkdir -p $(CHART)/files/crds
	rm -f $(CHART)/files/crds/*.yaml && cp config/crd/bases/*.yaml $(CHART)/files/crds/
	{ echo "# Generated from config/rbac/role.yaml by 'make helm-chart'; do not edit."; \
	  sed -n '/^rules:/,$$p' config/rbac/role.yaml; } > $(CHART)/files/manager-rules.yaml

.PHONY: namespaced-rbac
namespaced-rbac: ## Write the manager's Role of the namespace-scoped overlay (config/namespaced) from its ClusterRole.
	{ echo "# Generated from config/rbac/role.yaml by 'make manifests'; do not edit."; \
	  sed -e 's/^kind: ClusterRole$$/kind: Role/' -e 's/^  name: manager-role$$/  name: integrations-operator-manager-role/' \
	    config/rbac/role.yaml; } > config/namespaced/watch/manager_role.yaml

.PHONY: helm-lint
helm-lint: helm helm-chart ## Lint the Helm chart, render it with default and namespaced values, and check that its schema refuses a bad value.
	"$(HELM)" lint $(CHART)
	"$(HELM)" template test $(CHART) >/dev/null
	"$(HELM)" template test $(CHART) --set 'watchNamespaces={team-a,team-b}' --set crds.install=false \
		--set serviceMonitor.enabled=true --set metrics.tls.certManager.enabled=true --set replicaCount=2 \
		--set gatewayPodMonitor.enabled=true --set prometheusRule.enabled=true --set grafanaDashboard.enabled=true >/dev/null
	@if "$(HELM)" template test $(CHART) --set replicaCount=two >/dev/null 2>&1; then \
		echo "$(CHART)/values.schema.json accepts replicaCount: two"; exit 1; fi

##@ Deployment

ifndef ignore-not-found
  ignore-not-found = false
endif

.PHONY: install
install: manifests kustomize ## Install the CRDs into the cluster of the current kubeconfig.
	"$(KUSTOMIZE)" build config/crd | kubectl apply --server-side -f -

.PHONY: uninstall
uninstall: manifests kustomize ## Remove the CRDs from the cluster of the current kubeconfig.
	"$(KUSTOMIZE)" build config/crd | kubectl delete --ignore-not-found=$(ignore-not-found) -f -

.PHONY: deploy
deploy: build-installer ## Deploy the operator to the cluster of the current kubeconfig.
	kubectl apply --server-side -f dist/install.yaml

.PHONY: undeploy
undeploy: build-installer ## Remove the operator from the cluster of the current kubeconfig.
	kubectl delete --ignore-not-found=$(ignore-not-found) -f dist/install.yaml

##@ Tools

.PHONY: helm
helm: $(HELM) ## Build helm (pinned in hack/tools/helm) into bin/.
$(HELM): hack/tools/helm/go.mod | $(LOCALBIN)
	cd hack/tools/helm && go build -trimpath -ldflags "-s -w" -o "$(HELM)" helm.sh/helm/v3/cmd/helm

.PHONY: setup-envtest
setup-envtest: $(SETUP_ENVTEST) ## Build setup-envtest (pinned in hack/tools/setup-envtest) into bin/; make envtest builds it when it downloads.
$(SETUP_ENVTEST): hack/tools/setup-envtest/go.mod | $(LOCALBIN)
	cd hack/tools/setup-envtest && go build -trimpath -ldflags "-s -w" -o "$(SETUP_ENVTEST)" sigs.k8s.io/controller-runtime/tools/setup-envtest

.PHONY: crd-ref-docs
crd-ref-docs: $(CRD_REF_DOCS) ## Build crd-ref-docs (pinned in hack/tools/crd-ref-docs) into bin/.
$(CRD_REF_DOCS): hack/tools/crd-ref-docs/go.mod | $(LOCALBIN)
	cd hack/tools/crd-ref-docs && go build -trimpath -ldflags "-s -w" -o "$(CRD_REF_DOCS)" github.com/elastic/crd-ref-docs

.PHONY: controller-gen
controller-gen: $(CONTROLLER_GEN) ## Install controller-gen into bin/.
$(CONTROLLER_GEN): | $(LOCALBIN)
	$(call go-install-tool,$(CONTROLLER_GEN),sigs.k8s.io/controller-tools/cmd/controller-gen,$(CONTROLLER_TOOLS_VERSION))

.PHONY: kustomize
kustomize: $(KUSTOMIZE) ## Install kustomize into bin/.
$(KUSTOMIZE): | $(LOCALBIN)
	$(call go-install-tool,$(KUSTOMIZE),sigs.k8s.io/kustomize/kustomize/v5,$(KUSTOMIZE_VERSION))

# go-install-tool installs a pinned Go tool into bin/ under a versioned name.
# $1 target path, $2 package, $3 version.
define go-install-tool
@set -e; \
echo "Installing $(2)@$(3)"; \
GOBIN="$(LOCALBIN)" go install $(2)@$(3); \
mv "$(LOCALBIN)/$$(basename "$(2)" | sed 's/^v[0-9]*$$/kustomize/')" "$(1)"
endef

##@ Contracts

ABIGEN_VERSION ?= v1.17.10

.PHONY: contracts
contracts: ## Recompile the EIP-3009 test token with solc-js and regenerate its Go bindings (needs node/npm).
	cd contracts && npm ci --no-audit --no-fund && node build.js
	test -x "$(LOCALBIN)/abigen" || GOBIN="$(LOCALBIN)" go install github.com/ethereum/go-ethereum/cmd/abigen@$(ABIGEN_VERSION)
	"$(LOCALBIN)/abigen" --v2 --abi contracts/build/TestToken.abi --bin contracts/build/TestToken.bin \
		--pkg testtoken --type TestToken --out contracts/testtoken/testtoken.go

##@ Demo

.PHONY: geth
geth: ## Build geth from the pinned go-ethereum module into bin/ (the dev chain of the e2e suite and the demo).
	@hack/build-geth.sh >/dev/null

.PHONY: demo
demo: envtest geth kustomize ## Run control plane, PostgreSQL, dev chain, operator, gateway and a paid request locally; Ctrl-C cleans up.
	@assets="$$($(ENVTEST_ASSETS) 2>/dev/null)"; \
	KUBEBUILDER_ASSETS="$$assets" go run ./hack/demo $(DEMO_FLAGS)
