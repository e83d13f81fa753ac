# Shoestring — see README.md. Every target works on a fresh Debian machine.
GO       ?= go
BIN      := out/shoestring
# Tailscale features left out of the firmware (the overlay keeps only what
# an embedded tsnet node needs; see firmware/overlay/buildtags.txt).
TS_TAGS  := $(shell cat firmware/overlay/buildtags.txt)
# Debian packages the tests talk to (real peers, no mocks).
TEST_PKGS := knot knot-dnsutils nsd bind9 bind9-dnsutils ldnsutils dnsperf bird2 gobgpd iproute2 dnsmasq-base qemu-system-x86 qemu-system-arm libdevmapper1.02.1 chromium etcd-server e2fsprogs

.PHONY: run build test deps tools vet fuzz bench clean

# Static (CGO_ENABLED=0), as on every box: `shoestring host` runs it as
# each tenant in a root with no dynamic loader.
build:
	CGO_ENABLED=0 $(GO) build -trimpath -tags '$(TS_TAGS)' -o $(BIN) ./cmd/shoestring

## fleet-build: the fleet controller, its own binary (cmd/fleet).
FLEET_BIN := out/shoestring-fleet
.PHONY: fleet-build fleet
fleet-build:
	CGO_ENABLED=0 $(GO) build -trimpath -tags '$(TS_TAGS)' -o $(FLEET_BIN) ./cmd/fleet

## fleet: a controller and three dev nodes on loopback; prints the
## dashboard address and rolls a config change out across them.
fleet: build fleet-build
	./cmd/fleet/demo/demo.sh

## run: a node in dev mode on loopback with the example zone (no config needed).
run: build
	$(BIN) dev

## deps: install the Debian packages the tests need (only when root and missing).
deps:
	@./test/deps.sh $(TEST_PKGS)

## tools: programs the tests run that Debian lacks, built from versions
## pinned in their own module (headscale: test/overlay/tools); once.
tools: out/tools/headscale
out/tools/headscale: test/overlay/tools/go.mod test/overlay/tools/go.sum
	cd test/overlay/tools && $(GO) build -trimpath -o ../../../$@ github.com/juanfont/headscale/cmd/headscale

## test: install what the tests need, then run every test.
# Unit and package tests run in parallel; the cross-process suites under
# test/ (real Knot, NSD, BIND, BIRD, QEMU) one package at a time, because
# they assert deadlines (a route withdrawn within 1 s) that a CPU shared
# with another suite would blur. So do the packages elsewhere whose tests
# run real daemons in network namespaces (they import test/nslab: BGP and
# BFD against BIRD and GoBGP, with deadlines of their own), and the
# health checks, whose tests assert withdrawals within a second: `make
# test-list` shows the two phases.
MODULE     = $(shell $(GO) list -m)
LAB_PKGS   = $(sort $(MODULE)/firmware/health $(shell $(GO) list -f '{{$$p := .ImportPath}}{{range .TestImports}}{{if eq . "$(MODULE)/test/nslab"}}{{$$p}} {{end}}{{end}}' ./... | grep -v '/test/'))
UNIT_PKGS  = $(filter-out $(LAB_PKGS),$(shell $(GO) list ./... | grep -v '/test/'))
#
# Everything compiles with the flags the box's binary is built with
# (TEST_ENV: no cgo, -trimpath), as do the binaries the tests build
# (testenv, the fleet tests, the images): with one set of flags a cold
# build cache compiles each dependency once for amd64, not once per set.
# (The overlay's build tags stay off here: the tests' in-process tailnet
# control server, tailscale's tstest/integration, needs features the
# tags leave out; only the tailscale packages they touch are compiled
# twice.)
TEST_ENV = CGO_ENABLED=0 GOFLAGS=-trimpath
test: deps tools vet
	$(TEST_ENV) $(GO) test -count=1 -timeout 15m $(UNIT_PKGS)
	$(TEST_ENV) $(GO) test -count=1 -timeout 25m -p 1 $(LAB_PKGS) ./test/...
	$(TEST_ENV) $(MAKE) fuzz

.PHONY: test-list
test-list:
	@echo "parallel phase: $(UNIT_PKGS)"
	@echo "serial phase (-p 1): $(LAB_PKGS) ./test/..."

# vet compiles with make test's flags (TEST_ENV), so that they share the work.
vet:
	@test -z "$$(gofmt -l cmd firmware test board image ota)" || { gofmt -l cmd firmware test board image ota; echo "gofmt needed"; exit 1; }
	$(TEST_ENV) $(GO) vet ./...

## fuzz: each fuzz target briefly (longer runs: FUZZTIME=5m make fuzz).
FUZZTIME ?= 10s
fuzz:
	FUZZTIME=$(FUZZTIME) ./test/fuzz.sh

# valgrind: make bench BENCHFLAGS=-instructions (test/bench/README.md).
TEST_PKGS += valgrind

## bench: dnsperf against Shoestring, NSD and Knot on pinned cores; prints ratios.
# BENCHFLAGS: e.g. -ref-only, -runs 5, -duration 20s, -tenants 2 (see test/bench/README.md).
bench: deps build
	$(GO) run ./test/bench/cmd/bench -bin $(BIN) $(BENCHFLAGS)

clean:
	rm -rf out var

## lab: the anycast lab (BIRD router, three nodes, a client in network
## namespaces; test/lab) up to play with until Ctrl-C, then down. Root only.
## lab-up leaves it running; lab-down tears it down.
.PHONY: lab lab-up lab-down
lab: build
	$(GO) run ./test/lab/cmd/lab -bin $(BIN)
lab-up: build
	$(GO) run ./test/lab/cmd/lab -bin $(BIN) up
lab-down:
	$(GO) run ./test/lab/cmd/lab down

## image: a board's disk image, kernel and initramfs in out/BOARD/ (BOARD=rpi,
## atom386, atom64, brix, qemu-amd64, qemu-arm64 or all). Downloads the pinned
## Debian kernel (apt-get download; cached in out/cache). See image/.
## qemu: boot out/BOARD/ under QEMU, console on the terminal (Ctrl-A X quits).
.PHONY: image qemu
BOARD ?= qemu-amd64
BOARDS := atom386 atom64 brix qemu-amd64 qemu-arm64 rpi
# VERSION is stamped into the image and named by its bundle, so that a
# node compares like with like (ota/README.md, "Versions"): git describe
# of the last v-tag, or v0.0.0-COMMITS-gHASH while there is none; the
# same for the same commit (-dirty when the tree has changes).
# Computed once per make (:=), not at each use.
ifndef VERSION
VERSION := $(shell git describe --tags --match 'v[0-9]*' --abbrev=12 --dirty 2>/dev/null || \
	echo "v0.0.0-$$(git rev-list --count HEAD)-g$$(git rev-parse --short=12 HEAD)$$(git diff --quiet HEAD -- 2>/dev/null || echo -dirty)")
endif
image:
	$(GO) run ./cmd/mkimage -board $(BOARD) -version $(VERSION)
	@for b in $(if $(filter all,$(BOARD)),$(BOARDS),$(BOARD)); do echo $(VERSION) > out/$$b/image.version; done
qemu: image
	$(GO) run ./test/qemu/cmd/boot -board $(BOARD)

## bundle: the signed OTA bundle out/BOARD/shoestring-BOARD-VERSION.bundle
## (BOARD=all for every board), building the image first unless out/BOARD
## already holds this VERSION's. Signs with SIGNING_KEY=FILE, else with a
## development key made on first use in out/keys/. The build time is the
## image's (SOURCE_DATE_EPOCH, else the last commit's). See ota/README.md.
.PHONY: bundle
DEV_KEY := out/keys/shoestring-dev.key
SIGNING_KEY ?= $(DEV_KEY)
bundle: build
	@if [ "$(SIGNING_KEY)" = "$(DEV_KEY)" ] && [ ! -f $(DEV_KEY) ]; then \
		$(BIN) bundle keygen -name shoestring-dev -out out/keys || exit 1; fi
	@set -e; for b in $(if $(filter all,$(BOARD)),$(BOARDS),$(BOARD)); do \
		if [ "$$(cat out/$$b/image.version 2>/dev/null)" != "$(VERSION)" ]; then \
			$(MAKE) --no-print-directory image BOARD=$$b VERSION=$(VERSION); fi; \
		k=vmlinuz; [ -f out/$$b/vmlinux ] && k=vmlinux; \
		$(BIN) bundle create -key $(SIGNING_KEY) -board $$b -version $(VERSION) -stamped \
			-built $${SOURCE_DATE_EPOCH:-$$(git log -1 --format=%ct)} \
			-kernel out/$$b/$$k -initramfs out/$$b/initrd.img \
			-boot-files-from out/$$b/shoestring-$$b.img \
			-out out/$$b/shoestring-$$b-$(VERSION).bundle; \
	done
