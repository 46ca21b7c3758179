# Skyfleet. `make run` boots a node in QEMU; `make test` runs every test tier.
BOARD   ?= rpi3b
IMG     ?= skyfleet-$(BOARD).img
PORT    ?= 8080
FLEET   ?=
GO      ?= go
export PATH := $(PATH):/usr/sbin:/sbin

.PHONY: run image deps test test-unit test-e2e fuzz bench clean help

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' Makefile | sed 's/:.*## /\t/'

bin/skyfleet: FORCE
	@$(GO) build -o bin/skyfleet ./cmd/skyfleet

deps: ## install QEMU, dosfstools, e2fsprogs, mtools (apt-get as root; else prints the command)
	@scripts/deps.sh

image: bin/skyfleet ## build the SD-card image for BOARD (default rpi3b) as skyfleet-BOARD.img
	bin/skyfleet image --board $(BOARD) $(if $(FLEET),--fleet $(FLEET)) -o $(IMG)

run: deps ## build the rpi3b image and boot it in QEMU; status on 127.0.0.1:PORT
	@$(MAKE) --no-print-directory image BOARD=rpi3b
	bin/skyfleet qemu --image skyfleet-rpi3b.img --status-port $(PORT)

test: deps test-unit test-e2e fuzz ## all tiers: unit, golden, fuzz seeds, netns meshes, QEMU boots, fuzzing (CI: FUZZTIME=60s)

test-unit: ## tier 1: go vet and go test ./... (fast)
	$(GO) vet ./...
	$(GO) test ./...

test-e2e: ## tiers 2-3: netns meshes, a 300-node fleet, the dashboard in headless chromium, QEMU boots (minutes)
	$(GO) vet -tags e2e ./e2e/... ./services/control/dashboard/
	SKYFLEET_ARTEFACTS=$(CURDIR)/e2e/artifacts/dashboard $(GO) test -tags e2e -count=1 -timeout 5m ./e2e/browser/ ./services/control/dashboard/
	$(GO) test -tags e2e -count=1 -timeout 45m -v ./e2e/

fuzz: ## run every fuzz target for FUZZTIME (default 10s) each
	@scripts/fuzz.sh $(or $(FUZZTIME),10s)

bench: ## benchmarks (ratios printed by the benchmarks themselves)
	$(GO) test -run '^$$' -bench . -benchtime 3x ./...

clean:
	rm -rf bin skyfleet-*.img skyfleet-*.img.sha256

FORCE:
