# make test     the whole suite (same as ./scripts/test and .ci/run)
# make build    ./fedigate for this machine
# make release  static binaries for linux/amd64 and linux/arm64 in dist/
# make bench    fedigate side by side with nginx and Caddy (bench/run)
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)

.PHONY: test build release bench
test:
	./scripts/test

build:
	go build -buildvcs=auto -trimpath -ldflags "$(LDFLAGS)" -o fedigate ./cmd/fedigate

release:
	@mkdir -p dist
	for arch in amd64 arm64; do \
		CGO_ENABLED=0 GOOS=linux GOARCH=$$arch go build -buildvcs=auto -trimpath -ldflags "$(LDFLAGS)" \
			-o dist/fedigate-linux-$$arch ./cmd/fedigate || exit 1; \
	done
	cd dist && sha256sum fedigate-linux-* > SHA256SUMS

bench:
	bench/run
