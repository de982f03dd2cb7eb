# hayate: build, run, test. `make run` starts a public tracker on the
# defaults of ./tracker.conf; `make test` runs every suite CI runs.

PREFIX ?= /usr/local
DESTDIR ?=
BINDIR = $(DESTDIR)$(PREFIX)/bin
CARGO ?= cargo
PYTHON ?= python3
# Where cargo puts its output (CARGO_TARGET_DIR if set, as cargo does).
TARGET_DIR ?= $(if $(CARGO_TARGET_DIR),$(CARGO_TARGET_DIR),target)
INTEROP_VENV ?= $(TARGET_DIR)/interop-venv
LIBTORRENT_VERSION ?= 2.1.1

.PHONY: build run test bench lint install conf hostile interop-libtorrent clean

build:
	$(CARGO) build --release --locked

run: build
	./target/release/hayate --config ./tracker.conf

test:
	$(CARGO) test --locked

bench:
	$(CARGO) bench --locked --bench announce --bench query
	$(CARGO) bench --locked --bench memory
	$(CARGO) bench --locked --bench state

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

# Regenerate tracker.conf from the key table (a test fails when they drift).
conf:
	$(CARGO) run --quiet -- --config /dev/null --print-config > tracker.conf

# Issue 2's hostile mix at full scale (1 GiB header line, 2,000 idle, 200 slowloris).
hostile:
	HAYATE_HOSTILE=full $(CARGO) test --release --locked --test hostile_http -- --nocapture

# A real client: libtorrent (Python bindings, in a venv made once) announces
# over udp://127.0.0.1 and udp://[::1] and gets the other peers.
interop-libtorrent: build $(INTEROP_VENV)/.libtorrent-$(LIBTORRENT_VERSION)
	$(INTEROP_VENV)/bin/python tests/interop/libtorrent_udp.py $(TARGET_DIR)/release/hayate

$(INTEROP_VENV)/.libtorrent-$(LIBTORRENT_VERSION):
	$(PYTHON) -m venv $(INTEROP_VENV)
	$(INTEROP_VENV)/bin/pip install --quiet --disable-pip-version-check libtorrent==$(LIBTORRENT_VERSION)
	touch $@

install: build
	install -d $(BINDIR)
	install -m 0755 target/release/hayate $(BINDIR)/hayate

clean:
	$(CARGO) clean
