# One image, three programs: /manager (the operator), /gateway (the x402 data plane the operator
# runs per PaymentRoute) and /x402-pay (a payer CLI for trying a route).
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

# Static, stripped, reproducible binaries.
ENV CGO_ENABLED=0 GOTOOLCHAIN=local
RUN GOOS=${TARGETOS:-linux} GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags "-s -w" -o /out/ ./cmd/manager ./cmd/gateway ./cmd/x402-pay

# distroless/static: no shell, no package manager; nonroot (uid 65532).
FROM gcr.io/distroless/static:nonroot
WORKDIR /
COPY --from=builder /out/manager /out/gateway /out/x402-pay /
USER 65532:65532
ENTRYPOINT ["/manager"]
