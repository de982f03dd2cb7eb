#!/usr/bin/env bash
# Two trackers on the same core at once, each under its own load generator
# on the other core: an A/B whose figures the machine's drift cannot tell
# apart, since both see the same moments. (Alternating runs, as
# `make bench-compare` does, take A and B at different moments; on the
# development VM the same binary's UDP rate moved by up to 35% between
# runs minutes apart, which buries a 3-5% change.) Each tracker gets about
# half the core; the figure is CPU time per request (from /proc/PID/stat)
# and capacity (requests per second of tracker CPU).
#
#   benches/same-core.sh udp  BIN_A BIN_B   two hayate builds, aquatic_udp_load_test each
#   benches/same-core.sh udp  BIN_A aquatic_udp                 the same against aquatic_udp
#   benches/same-core.sh http BIN_A BIN_B   two hayate builds, hayate-load --keepalive off each
#   benches/same-core.sh http BIN_A opentracker                 the same against Debian's opentracker
#
# Over HTTP both trackers check the same 100k-hash allowlist (Debian's
# opentracker is a whitelist build), as in `make bench-compare`.
#
# Knobs (environment): ROUNDS (4), SECONDS (10 measured per round), TRACKER_CORE (0),
# LOAD_CORE (1). Swap A and B between invocations too: a slot can be a
# percent or two better than the other.
secs=${SECONDS:-0}
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=benches/shared.sh
. benches/shared.sh
(( secs >= 2 )) || secs=10
rounds=${ROUNDS:-4}
tcore=${TRACKER_CORE:-0} lcore=${LOAD_CORE:-1}
mode=${1:-} a=${2:-} b=${3:-}
case $mode in udp | http) ;; *) sed -n '2,20p' "$0"; exit 2 ;; esac
if [ -z "$a" ] || [ -z "$b" ]; then sed -n "2,20p" "$0"; exit 2; fi
load=tools/load/target/release/hayate-load
work=$(mktemp -d)
# opentracker drops to user nobody, which must read its whitelist here.
chmod 755 "$work"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
hz=$(getconf CLK_TCK)

if [[ $mode == udp ]]; then
    command -v aquatic_udp_load_test >/dev/null || { echo "same-core: needs aquatic_udp_load_test (make bench-compare installs it)"; exit 2; }
    [[ $b != aquatic_udp ]] || command -v aquatic_udp >/dev/null || { echo "same-core: needs aquatic_udp"; exit 2; }
else
    [[ $b != opentracker ]] || command -v opentracker >/dev/null || { echo "same-core: needs opentracker (make bench-compare installs it)"; exit 2; }
    [ -x "$load" ] || make -s load
    # hayate-load's default seed: these are the hashes it sends.
    "$load" hashes --torrents 100k --print-hashes "$work/allow.txt"
    chmod 644 "$work/allow.txt"
fi

# start NAME BIN SLOT: a tracker on port 3050+SLOT (UDP or HTTP).
start() {
    local port=$((3050 + $3))
    if [[ $2 == aquatic_udp ]]; then
        aquatic_conf "$work/aq.toml" "$port"
        taskset -c "$tcore" aquatic_udp -c "$work/aq.toml" > "$work/t$3.log" 2>&1 &
    elif [[ $2 == opentracker ]]; then
        # -i before -p/-P: the ports bind on the address named before them.
        taskset -c "$tcore" opentracker -i 127.0.0.1 -p "$port" -P "$port" -w "$work/allow.txt" \
            > "$work/t$3.log" 2>&1 &
    elif [[ $mode == udp ]]; then
        taskset -c "$tcore" "$2" --config /dev/null --workers 1 --log-level warn \
            --http-listen 127.0.0.1:0 --udp-listen "127.0.0.1:$port" > "$work/t$3.log" 2>&1 &
    else
        taskset -c "$tcore" "$2" --config /dev/null --workers 1 --log-level warn \
            --udp-listen 127.0.0.1:0 --http-listen "127.0.0.1:$port" --allowlist "$work/allow.txt" \
            --http-max-connections-per-ip 100000 > "$work/t$3.log" 2>&1 &
    fi
    echo $! > "$work/pid$3"
}

# load SLOT: the load generator for slot SLOT, running SECONDS + 6 s.
load_for() {
    local port=$((3050 + $1)) run=$((secs + 6))
    if [[ $mode == udp ]]; then
        udp_load_conf "$work/load$1.toml" "$port" "$run" "$secs"
        taskset -c "$lcore" aquatic_udp_load_test -c "$work/load$1.toml" > "$work/load$1.out" 2>&1 &
        echo $! > "$work/lpid$1"
    else
        taskset -c "$lcore" "$load" --http "127.0.0.1:$port" --keepalive off --threads 1 \
            --concurrency 16 --duration "${run}s" --warmup 5s > "$work/load$1.out" 2>&1 &
        echo $! > "$work/lpid$1"
    fi
}

# served SLOT: responses over the summarised span, from the load generator.
served() {
    if [[ $mode == udp ]]; then
        awk '/Average responses per second/ {print $5}' "$work/load$1.out"
    else
        awk '/^responses\/s:/ {print $2}' "$work/load$1.out"
    fi
}

printf '%-6s %28s %28s %8s\n' round "A $(basename "$a")" "B $(basename "$b")" "cap A/B"
for r in $(seq "$rounds"); do
    start A "$a" 0
    start B "$b" 1
    sleep 1.5
    if [[ $b == opentracker ]]; then
        # It reads its whitelist in a thread after binding: wait until a
        # whitelisted hash is accepted (over its UDP port).
        for _ in $(seq 50); do
            "$load" fill --udp 127.0.0.1:3051 --peers 1 --torrents 100k --timeout 200ms \
                2>/dev/null | grep -q '^fill: 1 of 1 ' && break
            sleep 0.2
        done
    fi
    load_for 0
    load_for 1
    sleep 5
    pa=$(cat "$work/pid0") pb=$(cat "$work/pid1")
    ca0=$(ticks "$pa") cb0=$(ticks "$pb")
    sleep "$secs"
    ca1=$(ticks "$pa") cb1=$(ticks "$pb")
    wait "$(cat "$work/lpid0")" "$(cat "$work/lpid1")" 2>/dev/null || true
    kill "$pa" "$pb" 2>/dev/null || true
    wait "$pa" "$pb" 2>/dev/null || true
    python3 - "$(served 0)" "$(served 1)" "$ca0" "$ca1" "$cb0" "$cb1" "$hz" "$secs" "$r" <<'PY'
import sys
ra, rb, ca0, ca1, cb0, cb1, hz, secs = (float(x) for x in sys.argv[1:9])
busy_a, busy_b = (ca1 - ca0) / hz / secs, (cb1 - cb0) / hz / secs
cap_a, cap_b = ra / busy_a, rb / busy_b
fig = lambda rps, busy, cap: f"{rps:7.0f}/s {busy * 100:3.0f}% {1e6 / cap:6.2f} us"
print(f"{sys.argv[9]:<6} {fig(ra, busy_a, cap_a):>28} {fig(rb, busy_b, cap_b):>28} {cap_a / cap_b:8.3f}")
PY
done
echo "(per tracker: responses/s, busy share of the core, CPU per response; cap A/B > 1: A serves more per CPU second)"
