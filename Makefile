# hayate: build, run, test. `make run` starts a public tracker on the
# defaults of ./tracker.conf; `make test` runs every suite CI runs.

PREFIX ?= /usr/local
DESTDIR ?=
BINDIR = $(DESTDIR)$(PREFIX)/bin
CARGO ?= cargo

.PHONY: build run test bench lint install conf hostile clean

build:
	$(CARGO) build --release --locked

run: build
	./target/release/hayate --config ./tracker.conf

test:
	$(CARGO) test --locked

bench:
	$(CARGO) bench --locked --bench announce --bench query
	$(CARGO) bench --locked --bench memory

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

# Regenerate tracker.conf from the key table (a test fails when they drift).
conf:
	$(CARGO) run --quiet -- --config /dev/null --print-config > tracker.conf

# Issue 2's hostile mix at full scale (1 GiB header line, 2,000 idle, 200 slowloris).
hostile:
	HAYATE_HOSTILE=full $(CARGO) test --release --locked --test hostile_http -- --nocapture

install: build
	install -d $(BINDIR)
	install -m 0755 target/release/hayate $(BINDIR)/hayate

clean:
	$(CARGO) clean
