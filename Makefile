# pbx-agent — see README.md. `make run` and `make test` are the two set-up commands.
SHELL := /bin/bash
GO ?= go
BIN := pbx-agent
TMP := $(CURDIR)/.tmp
export GOFLAGS ?= -buildvcs=false

.PHONY: all build run test cluster-test deps vet bench fuzz parity clean

all: build

# The codec decoders link Debian's libraries through cgo (make test installs
# them). Without their headers the agent is built with the nocodecs tag: it
# runs and decodes G.711 only, and says so once per call; without
# libavcodec's (iLBC, G.723.1) with the noavcodec tag.
CODEC_HEADERS := spandsp/g722.h gsm.h opus/opus.h bcg729/decoder.h speex/speex.h
CODEC_TAGS := $(if $(strip $(foreach h,$(CODEC_HEADERS),$(if $(wildcard /usr/include/$(h)),,missing))),-tags nocodecs,$(if $(wildcard /usr/include/*/libavcodec/avcodec.h /usr/include/libavcodec/avcodec.h),,-tags noavcodec))

build:
	@$(if $(CODEC_TAGS),echo "build: codec headers missing (apt-get install libspandsp-dev libgsm1-dev libopus-dev libbcg729-dev libspeex-dev libavcodec-dev): building with $(CODEC_TAGS)",true)
	$(GO) build $(CODEC_TAGS) -o $(BIN) ./agent

# Runs the agent on its embedded default: no interface configured, so it
# replays the bundled capture and prints the calls it saw.
run: build
	./$(BIN) $(RUN_ARGS)

# Installs what the tests need (apt-get, when missing), then vet + race tests.
test: deps
	$(GO) vet ./...
	bash scripts/test.sh

# The Galera tests: a 3-node MariaDB Galera cluster on 127.0.0.1 (about 15-25 s
# to start), sensors writing through different nodes, nodes killed mid-run.
cluster-test: deps
	bash scripts/cluster-test.sh

deps:
	bash scripts/deps.sh

bench:
	bash scripts/bench.sh

# Long fuzzing, outside `make test`: FUZZTIME per target (default 10m).
fuzz:
	bash scripts/fuzz.sh

# Compares the agent's MySQL rows with what the real VoIPmonitor wrote for the
# shared captures (needs ../shared/fixtures); writes testdata/parity/REPORT.md.
parity:
	bash scripts/parity.sh

clean:
	rm -rf $(BIN) $(TMP)

# --- packaging (issue 11) ---------------------------------------------------
# `make deb`: Debian package with dpkg-deb (no root needed), under .tmp/deb/.
# `make install`: the same files and set-up on a host without dpkg (as root;
# DESTDIR=... stages instead). VERSION=... overrides the git-derived version.
.PHONY: deb install

deb:
	bash scripts/package/build-deb.sh $(TMP)/deb

install: build
	bash scripts/package/install.sh ./$(BIN)
