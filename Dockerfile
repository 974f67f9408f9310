# One image, four programs: /manager (the operator), /gateway (the x402 data plane the operator
# runs per PaymentRoute), /exchange (the managed token exchange the operator runs for
# AuthIntegrations) and /x402-pay (a payer CLI for trying a route).
ARG GO_VERSION=1.26
FROM golang:${GO_VERSION} AS builder
ARG TARGETOS
ARG TARGETARCH

WORKDIR /workspace
# Dependencies first, so source changes do not invalidate the module download layer.
COPY go.mod go.sum ./
RUN go mod download

COPY api/ api/
COPY cmd/ cmd/
COPY internal/ internal/
COPY contracts/ contracts/

ENV GOTOOLCHAIN=local
# Static, stripped, reproducible binaries. The manager, the token exchange and the payer CLI are
# pure Go.
RUN CGO_ENABLED=0 GOOS=${TARGETOS:-linux} GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags "-s -w" -o /out/ ./cmd/manager ./cmd/exchange ./cmd/x402-pay
# The gateway links libsecp256k1 (bundled with go-ethereum) through cgo: signature recovery, the
# bulk of a paid request's CPU, is about 3x faster than the pure-Go fallback (docs/benchmarks.md).
# netgo/osusergo and -static keep it a static binary that runs on distroless/static.
RUN CGO_ENABLED=1 GOOS=${TARGETOS:-linux} GOARCH=${TARGETARCH} \
    go build -trimpath -tags netgo,osusergo -ldflags "-s -w -extldflags -static" -o /out/gateway ./cmd/gateway

# distroless/static: no shell, no package manager; nonroot (uid 65532).
FROM gcr.io/distroless/static:nonroot
WORKDIR /
COPY --from=builder /out/manager /out/gateway /out/exchange /out/x402-pay /
USER 65532:65532
ENTRYPOINT ["/manager"]
