#!/usr/bin/env bash
# UDP announce throughput: hayate vs aquatic_udp under aquatic_udp_load_test,
# tracker pinned to core 0 with one worker, load generator pinned to core 1,
# alternating runs (A B A B ...). Prints responses/s and the tracker's CPU
# time per response for each run, then the medians.
#
#   benches/udp_compare.sh [PAIRS] [SECONDS]      (defaults: 3 pairs, 30 s)
#
# Needs: cargo install aquatic_udp_load_test; cargo install aquatic_udp
# --no-default-features (its default features no longer build); taskset.
# Run it on an otherwise idle machine: a compile on the other core skews it.
set -euo pipefail
cd "$(dirname "$0")/.."
pairs=${1:-3}
secs=${2:-30}
port=3000
for tool in aquatic_udp aquatic_udp_load_test taskset; do
    command -v "$tool" >/dev/null || { echo "missing $tool (see the header of $0)"; exit 2; }
done
if ss -Hlun "sport = :$port" | grep -q .; then
    echo "UDP port $port is busy (a stray tracker?): $(ss -Hlunp "sport = :$port")"
    exit 2
fi
cargo build --release --quiet
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Same request mix for both: 100k torrents, 200k peers, announce 100 : scrape 1,
# 30 peers wanted, one load worker.
aquatic_udp_load_test -p > "$work/load.toml"
sed -i -e "s/^server_address = .*/server_address = \"127.0.0.1:$port\"/" \
    -e "s/^duration = .*/duration = $secs/" \
    -e "s/^summarize_last = .*/summarize_last = $((secs * 2 / 3))/" \
    -e 's/^number_of_torrents = .*/number_of_torrents = 100000/' \
    -e 's/^number_of_peers = .*/number_of_peers = 200000/' \
    -e 's/^weight_connect = .*/weight_connect = 0/' \
    -e 's/^weight_announce = .*/weight_announce = 100/' \
    -e 's/^weight_scrape = .*/weight_scrape = 1/' "$work/load.toml"
aquatic_udp -p > "$work/aquatic.toml"
sed -i -e 's/^socket_workers = .*/socket_workers = 1/' \
    -e "s/^address = .*/address = \"0.0.0.0:$port\"/" "$work/aquatic.toml"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
run() {
    local name=$1; shift
    taskset -c 0 "$@" > "$work/$name.log" 2>&1 &
    local pid=$!
    sleep 1.5
    kill -0 "$pid" 2>/dev/null || { echo "$name did not start:"; cat "$work/$name.log"; exit 1; }
    local c0; c0=$(cpu_ticks "$pid")
    taskset -c 1 aquatic_udp_load_test -c "$work/load.toml" > "$work/load.out" 2>&1
    local c1; c1=$(cpu_ticks "$pid")
    kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
    sleep 0.5
    local rps; rps=$(awk '/Average responses per second/ {print $5}' "$work/load.out")
    python3 - "$name" "$rps" "$c0" "$c1" "$secs" <<'PY' | tee -a "$work/results"
import sys
name, rps, c0, c1, secs = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
cpu = (c1 - c0) / 100
print(f"{name} {rps:.0f} {cpu / (rps * secs) * 1e6:.2f} {cpu / secs * 100:.0f}")
PY
}

echo "tracker responses/s us-CPU-per-response tracker-core-busy-%"
for _ in $(seq "$pairs"); do
    run hayate ./target/release/hayate --config /dev/null --http-listen 127.0.0.1:0 \
        --udp-listen "0.0.0.0:$port" --workers 1 --log-level warn
    run aquatic_udp aquatic_udp -c "$work/aquatic.toml"
done
python3 - "$work/results" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
med = {}
for name in ("hayate", "aquatic_udp"):
    r = [(float(a), float(b)) for n, a, b, _ in rows if n == name]
    med[name] = (statistics.median(x for x, _ in r), statistics.median(y for _, y in r))
    print(f"median {name}: {med[name][0]:.0f} responses/s, {med[name][1]:.2f} us CPU per response")
h, a = med["hayate"], med["aquatic_udp"]
print(f"ratio hayate/aquatic_udp: responses/s {h[0] / a[0]:.2f}x, CPU per response {h[1] / a[1]:.2f}x (lower is better)")
PY
