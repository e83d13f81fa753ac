# Shoestring — see README.md. Every target works on a fresh Debian machine.
GO       ?= go
BIN      := out/shoestring
# Tailscale features left out of the firmware (the overlay keeps only what
# an embedded tsnet node needs; see firmware/overlay/buildtags.txt).
TS_TAGS  := $(shell cat firmware/overlay/buildtags.txt)
# Debian packages the tests talk to (real peers, no mocks).
TEST_PKGS := knot knot-dnsutils nsd bind9 bind9-dnsutils ldnsutils dnsperf bird2 gobgpd iproute2 dnsmasq-base qemu-system-x86 qemu-system-arm libdevmapper1.02.1 chromium

.PHONY: run build test deps tools vet fuzz bench clean

build:
	$(GO) build -trimpath -tags '$(TS_TAGS)' -o $(BIN) ./cmd/shoestring

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
# with another suite would blur. So do the routing packages whose tests
# assert deadlines (BFD detection and BGP against BIRD and GoBGP, health
# withdrawals within a second, netlink reconciling): DEADLINE_PKGS run in
# the one-at-a-time phase, never beside the parallel one.
DEADLINE_PKGS := ./firmware/bgp ./firmware/bfd ./firmware/health ./firmware/netconf
test: deps tools vet
	$(GO) test -count=1 -timeout 15m $$($(GO) list ./... | grep -v '/test/' | grep -vxF "$$($(GO) list $(DEADLINE_PKGS))")
	$(GO) test -count=1 -timeout 25m -p 1 $(DEADLINE_PKGS) ./test/...
	$(MAKE) fuzz

vet:
	@test -z "$$(gofmt -l cmd firmware test board image ota)" || { gofmt -l cmd firmware test board image ota; echo "gofmt needed"; exit 1; }
	$(GO) vet ./...

## fuzz: each fuzz target briefly (longer runs: FUZZTIME=5m make fuzz).
FUZZTIME ?= 10s
fuzz:
	FUZZTIME=$(FUZZTIME) ./test/fuzz.sh

## bench: dnsperf against Shoestring, NSD and Knot on pinned cores; prints ratios.
# BENCHFLAGS: e.g. -ref-only, -runs 5, -duration 20s (see test/bench/README.md).
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
image:
	$(GO) run ./cmd/mkimage -board $(BOARD)
qemu: image
	$(GO) run ./test/qemu/cmd/boot -board $(BOARD)
