# hayate: build, run, test. `make run` starts a public tracker on the
# defaults of ./tracker.conf; `make test` runs every suite CI runs.

# `make install` layout. PREFIX: the binary goes to $(PREFIX)/bin.
# SYSTEMD_UNIT_DIR: where hayate.service goes ($(PREFIX)/lib/systemd/system
# is on systemd's search path for /usr/local and /usr; a distribution
# package would say /usr/lib/systemd/system). CONFDIR is fixed: the unit's
# ConfigurationDirectory=hayate means /etc/hayate. DESTDIR: staging root.
PREFIX ?= /usr/local
DESTDIR ?=
SYSTEMD_UNIT_DIR ?= $(PREFIX)/lib/systemd/system
CONFDIR = /etc/hayate
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
	$(TARGET_DIR)/release/hayate --config ./tracker.conf

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

# Installs what `make build` built; it builds only when there is no binary
# yet, so `make build && sudo make install` never runs cargo as root.
# The unit's ExecStart and ExecReload are rewritten for PREFIX. An existing
# tracker.conf is never overwritten: the new default goes beside it as
# tracker.conf.new.
install: $(TARGET_DIR)/release/hayate
	install -d "$(BINDIR)" "$(DESTDIR)$(SYSTEMD_UNIT_DIR)" "$(DESTDIR)$(CONFDIR)"
	install -m 0755 $(TARGET_DIR)/release/hayate "$(BINDIR)/hayate"
	sed 's|^\(Exec[A-Za-z]*=\)/usr/local/bin/hayate |\1$(PREFIX)/bin/hayate |' \
		contrib/hayate.service > "$(DESTDIR)$(SYSTEMD_UNIT_DIR)/hayate.service"
	chmod 0644 "$(DESTDIR)$(SYSTEMD_UNIT_DIR)/hayate.service"
	grep -q '^ExecStart=$(PREFIX)/bin/hayate ' "$(DESTDIR)$(SYSTEMD_UNIT_DIR)/hayate.service"
	@if [ -e "$(DESTDIR)$(CONFDIR)/tracker.conf" ]; then \
		install -m 0644 tracker.conf "$(DESTDIR)$(CONFDIR)/tracker.conf.new"; \
		echo "kept $(DESTDIR)$(CONFDIR)/tracker.conf; new defaults in tracker.conf.new"; \
	else \
		install -m 0644 tracker.conf "$(DESTDIR)$(CONFDIR)/tracker.conf"; \
	fi

$(TARGET_DIR)/release/hayate:
	$(CARGO) build --release --locked

clean:
	$(CARGO) clean
