# Skyfleet. `make run` boots a node in QEMU; `make test` runs every test tier.
BOARD   ?= rpi3b
IMG     ?= skyfleet-$(BOARD).img
PORT    ?= 8080
FLEET   ?=
# FIRMWARE: a directory laid out as /lib/firmware with the board's Wi-Fi firmware
# (default: Debian's firmware-brcm80211 and wireless-regdb, see README).
FIRMWARE ?=
GO      ?= go
export PATH := $(PATH):/usr/sbin:/sbin

.PHONY: run image deps test vet test-unit test-browser test-e2e fuzz bench clean help

# Every `go test` below goes through internal/testcheck: failing tests with their
# logs, a line per package, skips listed at the end. With SKYFLEET_CI=1 (.ci/run sets
# it) a skipped test not on .ci/allowed-skips fails the run.
TESTCHECK = bin/testcheck -allow .ci/allowed-skips
# The fuzz stage's total wall time, shared by every fuzz target (scripts/fuzz.sh).
FUZZBUDGET ?= 5m
ifdef FUZZTIME
$(error FUZZTIME (per target) is gone: set FUZZBUDGET, the fuzz stage's total time shared by all targets)
endif

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' Makefile | sed 's/:.*## /\t/'

bin/skyfleet: FORCE
	@$(GO) build -o bin/skyfleet ./cmd/skyfleet

bin/testcheck: FORCE
	@$(GO) build -o bin/testcheck ./internal/testcheck/cmd/testcheck

deps: ## install QEMU, dosfstools, e2fsprogs, mtools (apt-get as root; else prints the command)
	@scripts/deps.sh

image: bin/skyfleet ## build the SD-card image for BOARD (default rpi3b) as skyfleet-BOARD.img (FIRMWARE=DIR: Wi-Fi firmware)
	bin/skyfleet image --board $(BOARD) $(if $(FLEET),--fleet $(FLEET)) $(if $(FIRMWARE),--firmware $(FIRMWARE)) -o $(IMG)

run: deps ## build the rpi3b image and boot it in QEMU; status on 127.0.0.1:PORT
	@$(MAKE) --no-print-directory image BOARD=rpi3b
	bin/skyfleet qemu --image skyfleet-rpi3b.img --status-port $(PORT)

test: ## every tier in stages (deps, vet, unit, browser, e2e, fuzz), each stage's wall time printed and summed up
	@MAKE="$(MAKE)" scripts/stages.sh deps=deps vet=vet unit=test-unit browser=test-browser e2e=test-e2e fuzz=fuzz

vet: ## go vet, without and with the e2e, soak and kernelvm tags
	$(GO) vet ./...
	$(GO) vet -tags e2e ./e2e/... ./services/control/dashboard/ ./services/msg/web/
	$(GO) vet -tags 'e2e soak' ./e2e/
	$(GO) vet -tags kernelvm ./drivers/... ./services/wifi/ ./internal/hwsimtest/

test-unit: bin/testcheck ## tier 1: go test ./... (unit, golden vectors, fuzz seeds)
	$(TESTCHECK) -- $(GO) test -json ./...

test-browser: bin/testcheck ## the fleet dashboard and the phones' messaging page in headless chromium
	SKYFLEET_ARTEFACTS=$(CURDIR)/e2e/artifacts/dashboard $(TESTCHECK) -- $(GO) test -json -tags e2e -count=1 -timeout 5m ./e2e/browser/ ./services/control/dashboard/ ./services/msg/web/

test-e2e: bin/testcheck ## tiers 2-3: netns meshes, a 300-node fleet, QEMU boots (minutes; progress as go test -v)
	$(TESTCHECK) -v -- $(GO) test -json -tags e2e -count=1 -timeout 60m -parallel 12 ./e2e/

fuzz: bin/testcheck ## every fuzz target within FUZZBUDGET in all (default 5m; CI: see .ci/run)
	@GO="$(GO)" scripts/fuzz.sh $(FUZZBUDGET)

bench: ## benchmarks (ratios printed by the benchmarks themselves)
	$(GO) test -run '^$$' -bench . -benchtime 3x ./...

# Soak runs: the long versions of tests whose CI run is kept short, outside CI. Add
# further soak tests to the -run list. SKYFLEET_CUSTODY_KILLS, SKYFLEET_QEMU_CUTS and
# SKYFLEET_UPDATE_CUTS from the environment override the 200 kills, the 10 power cuts
# of the QEMU image while messages flow and the 30 during updates (CI: 20 kills, 2 and
# 3 cuts); SKYFLEET_QEMU_UPDATE=1 makes TestQEMUUpdate try all three failing releases
# (CI: the failed health check); SKYFLEET_RADIO_FILE the bytes streamed over each
# radio link (CI: 2048).
.PHONY: soak
soak: bin/testcheck ## long runs outside CI: custody under 200 SIGKILLs, 10 power cuts of the QEMU image while messages flow and 30 during updates, every failing update, 20 KB over each radio link, hostapd and wpa_supplicant between themselves in the kernel VM (2-3 hours)
	SKYFLEET_CUSTODY_KILLS=$${SKYFLEET_CUSTODY_KILLS:-200} SKYFLEET_QEMU_CUTS=$${SKYFLEET_QEMU_CUTS:-10} SKYFLEET_UPDATE_CUTS=$${SKYFLEET_UPDATE_CUTS:-30} SKYFLEET_QEMU_UPDATE=1 SKYFLEET_RADIO_FILE=$${SKYFLEET_RADIO_FILE:-20480} $(TESTCHECK) -v -- $(GO) test -json -tags 'e2e soak' -count=1 -timeout 240m -run '^(TestCustodySurvivesKills|TestQEMUPowerCutsWhileMessagesFlow|TestQEMUUpdate|TestQEMUUpdatePowerCuts|TestRadioMessageThroughTwoDirewolves|TestRadioModemBothEnds|TestWifiReferenceInVM)$$' ./e2e/

# Skyfleet against a peer mesh, outside CI: e2e/ygg_bench_test.go builds only with the
# yggbench tag. ROUNDS from the environment overrides the 3 rounds.
.PHONY: bench-ygg
bench-ygg: ## Skyfleet vs Yggdrasil on a 4-node netns line, alternated rounds (root; installs yggdrasil; minutes)
	bench/ygg.sh

clean:
	rm -rf bin skyfleet-*.img skyfleet-*.img.sha256

FORCE:
