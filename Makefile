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
# The Prometheus text parser the stats page is checked with (interop-prometheus).
PROMETHEUS_CLIENT_VERSION ?= 0.21.1

# The MySQL/MariaDB driver (issue 16): `make build-mysql` builds the binary
# that takes database = mysql://...; `make test-mysql` runs its suites
# against the server on 127.0.0.1:3306 (root, no password; override with
# HAYATE_TEST_MYSQL=mysql://user:password@host:port) and FAILS when that
# server is unreachable. Each test makes its own database and drops it.
.PHONY: build-mysql test-mysql

.PHONY: build run test bench bench-compare lint install conf hostile soak load fuzz interop interop-capture interop-clients clean

build:
	$(CARGO) build --release --locked

run: build
	$(TARGET_DIR)/release/hayate --config ./tracker.conf

test:
	$(CARGO) test --locked

build-mysql:
	$(CARGO) build --release --locked --features mysql

test-mysql:
	$(CARGO) test --locked --features mysql --lib -- mysql
	$(CARGO) test --locked --features mysql --test mysql
	$(CARGO) test --locked --features mysql --test private_crash -- mysql

bench:
	$(CARGO) bench --locked --bench announce --bench query
	$(CARGO) bench --locked --bench memory
	$(CARGO) bench --locked --bench state
	$(CARGO) bench --locked --bench private_memory

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

# Regenerate tracker.conf from the key table (a test fails when they drift).
conf:
	$(CARGO) run --quiet -- --config /dev/null --print-config > tracker.conf

# Issue 6's hostile mix at full scale, every attack at once against one
# tracker (1 GiB header line, 5,000 idle, 500 slowloris, 10,000 mangled
# requests, pipelined garbage, a UDP flood); prints the figures. About 1 min.
hostile:
	HAYATE_HOSTILE=full $(CARGO) test --release --locked --test hostile_mix -- --nocapture

# Issue 5: hayate against aquatic_udp (UDP) and opentracker (HTTP, close and
# keep-alive), resident bytes per peer, UDP latency at half the maximum rate.
# Installs the other trackers when missing (cargo install, apt-get). Not in
# CI. SCENARIOS, PAIRS, SECONDS and the rest: benches/README.md.
bench-compare: build load
	TARGET_DIR=$(TARGET_DIR) benches/compare.sh

# The load generator (tools/load, its own crate, std only): not part of the
# main build.
load:
	cd tools/load && CARGO_TARGET_DIR=target $(CARGO) build --release --locked

# Issue 6's soak: hayate under half its maximum UDP rate with churn for
# SOAK_MINUTES (default 60), a row a minute, a memory verdict, SIGTERM exit 0.
# Not in CI. See benches/README.md.
soak: build load
	TARGET_DIR=$(TARGET_DIR) benches/soak.sh

# Real clients (issue 7): each suite in tests/interop/ starts hayate and a
# seeder + two leechers of one client that must find each other only
# through hayate, over HTTP and UDP, IPv4 and IPv6 where the client can.
# `make interop` runs them all; `make interop-aria2` one. The clients come
# from PyPI (libtorrent, in a venv made once) and Debian (apt-get, only when
# a program is missing). `make interop-capture` also rewrites the request
# fixtures in tests/fixtures/clients/ (replayed by `make test`).
INTEROP_SUITES ?= libtorrent transmission aria2 ctorrent rtorrent prometheus
INTEROP_APT = transmission-daemon aria2 ctorrent rtorrent
INTEROP_PROGRAMS = transmission-daemon aria2c ctorrent rtorrent
INTEROP_PY = $(INTEROP_VENV)/bin/python
SUDO = $(if $(filter 0,$(shell id -u)),,sudo)

interop: build interop-clients
	@status=0; for s in $(INTEROP_SUITES); do \
		PYTHONDONTWRITEBYTECODE=1 $(INTEROP_PY) tests/interop/$${s}_suite.py \
			$(TARGET_DIR)/release/hayate || status=1; \
	done; exit $$status

interop-%: build interop-clients
	PYTHONDONTWRITEBYTECODE=1 $(INTEROP_PY) tests/interop/$*_suite.py $(TARGET_DIR)/release/hayate

interop-capture:
	HAYATE_CAPTURE=1 $(MAKE) interop

interop-clients: $(INTEROP_VENV)/.libtorrent-$(LIBTORRENT_VERSION) $(INTEROP_VENV)/.prometheus-client-$(PROMETHEUS_CLIENT_VERSION)
	@missing=0; for p in $(INTEROP_PROGRAMS); do \
		command -v $$p >/dev/null || missing=1; \
	done; \
	if [ $$missing = 1 ]; then \
		export DEBIAN_FRONTEND=noninteractive; \
		$(SUDO) apt-get install -y -q $(INTEROP_APT) >/dev/null || \
		{ $(SUDO) apt-get update -q >/dev/null && \
		  $(SUDO) apt-get install -y -q $(INTEROP_APT) >/dev/null; }; \
	fi

$(INTEROP_VENV)/.libtorrent-$(LIBTORRENT_VERSION):
	$(PYTHON) -m venv $(INTEROP_VENV)
	$(INTEROP_VENV)/bin/pip install --quiet --disable-pip-version-check libtorrent==$(LIBTORRENT_VERSION)
	touch $@

$(INTEROP_VENV)/.prometheus-client-$(PROMETHEUS_CLIENT_VERSION): $(INTEROP_VENV)/.libtorrent-$(LIBTORRENT_VERSION)
	$(INTEROP_VENV)/bin/pip install --quiet --disable-pip-version-check prometheus-client==$(PROMETHEUS_CLIENT_VERSION)
	touch $@

# Fuzzing (issue 6; not in CI): the libFuzzer targets in fuzz/ through
# cargo-fuzz, installed when missing. Stable rustc takes cargo-fuzz's
# sanitizer flags with RUSTC_BOOTSTRAP=1. The corpora are seeded from the
# client fixtures and tracker.conf, then each target runs FUZZ_SECONDS, one
# after the other in one process; a crash leaves its input in
# fuzz/artifacts/TARGET/ and fails the run. libFuzzer's output goes to
# fuzz/artifacts/TARGET.log; its final stats are summed up at the end.
# FUZZ_SANITIZER=none drops AddressSanitizer (about 3x the executions per
# second on conf_file; our parsers are safe Rust, so ASan watches only
# the dependencies' unsafe code).
FUZZ_TARGETS ?= http_request udp_codec conf_file
FUZZ_SECONDS ?= 60
FUZZ_SANITIZER ?= address
FUZZ_FLAGS ?=

fuzz:
	@command -v cargo-fuzz >/dev/null || $(CARGO) install --locked cargo-fuzz
	$(PYTHON) fuzz/seed_corpus.py
	@mkdir -p fuzz/artifacts
	@status=0; summary=; for t in $(FUZZ_TARGETS); do \
		log=fuzz/artifacts/$$t.log; \
		echo "fuzz $$t: $(FUZZ_SECONDS)s (libFuzzer output in $$log)"; \
		RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run -s $(FUZZ_SANITIZER) $$t -- -max_total_time=$(FUZZ_SECONDS) \
			-print_final_stats=1 $(FUZZ_FLAGS) >$$log 2>&1 || { \
			status=1; tail -n 30 $$log; \
			echo "fuzz $$t: FAILED, crash input in fuzz/artifacts/$$t/"; }; \
		summary="$$summary$$(awk -v t=$$t ' \
			/^stat::number_of_executed_units:/ { runs = $$2 } \
			/^stat::average_exec_per_sec:/ { rate = $$2 } \
			/ cov: / { line = $$0 } \
			END { sub(/^.* cov:/, "cov:", line); sub(/ (lim|exec\/s):.*/, "", line); \
				printf "%-14s %10s executions %8s exec/s   %s\n", t, runs, rate, line }' $$log)\n"; \
	done; printf "\n%b" "$$summary"; exit $$status

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

# A Debian package (issue 17): `make deb` builds
# $(TARGET_DIR)/debian/hayate_VERSION_ARCH.deb with plain dpkg-deb
# (contrib/deb/build.sh: the `install` layout with PREFIX=/usr, the unit in
# /usr/lib/systemd/system, /etc/hayate/tracker.conf a conffile; the service
# is not enabled on install). It runs `build` first, so the package holds
# the default-features binary even after `make build-mysql`.
# DEB_MAINTAINER=... sets the Maintainer field. `make deb-test` installs,
# upgrades, removes and purges the package on this machine with dpkg
# (root; it refuses to run when a hayate package is installed already).
.PHONY: deb deb-test

deb: build
	TARGET_DIR=$(TARGET_DIR) MAKE="$(MAKE)" contrib/deb/build.sh

deb-test: deb
	$(SUDO) env TARGET_DIR=$(TARGET_DIR) tests/deb.sh
