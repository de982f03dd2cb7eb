#!/usr/bin/env bash
# `make bench-compare`: hayate against the trackers people compare it with,
# on one machine, one tracker core each (issue 5).
#
#   udp             aquatic_udp_load_test vs hayate and aquatic_udp
#   http-close      hayate-load over HTTP, a new connection per request,
#                   vs hayate and opentracker
#   http-keepalive  the same on persistent connections
#   memory          resident bytes per peer after a fill of MEM_PEERS IPv4
#                   peers (hayate, aquatic_udp, opentracker) and IPv6 (hayate)
#   latency         hayate's UDP p50/p99/p99.9 at half its udp rate, open loop
#
# The tracker runs pinned to core 0 with one worker thread where that is
# configurable, the load generator pinned to core 1. Throughput runs
# alternate (hayate, other, hayate, other, ...; PAIRS pairs of SECONDS each)
# so drift in the machine hits both alike; each run gets a fresh tracker.
# For every run: responses/s, the tracker's CPU time per response and its
# core's busy share (from /proc/PID/stat, sampled over the summarised part
# of the run), and the capacity = responses/s / busy share: responses per
# second of tracker core. With one load core against one tracker core the
# load generator often runs out first, so capacity is the figure the
# ratios and verdicts use. benches/README.md says how to read the output.
#
# Knobs (environment): SCENARIOS (default: all five, in the order above),
# PAIRS (5), SECONDS (30; bash counts SECONDS up from the value it inherits,
# so it is read first thing), BENCH_PORT (3000; TCP and UDP must be free),
# HTTP_CONCURRENCY (16 connections in flight), MEM_PEERS (1M),
# MEM_TORRENTS (200k), LATENCY_RATE (requests/s; default: half of hayate's
# udp rate, capped at what hayate-load can pace from one core), HAYATE_FLAGS
# (extra hayate flags for every run), TARGET_DIR (cargo's, as in the Makefile).
#
# Installs what a scenario needs when it is missing: aquatic_udp and
# aquatic_udp_load_test (cargo install), opentracker (apt-get). Exits 0 when
# every target is met, 1 when one is missed, 2 when it cannot run.
secs=${SECONDS:-0}
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=benches/shared.sh
. benches/shared.sh
(( secs >= 2 )) || secs=30
pairs=${PAIRS:-5}
scenarios=${SCENARIOS:-udp http-close http-keepalive memory latency}
port=${BENCH_PORT:-3000}
http_conc=${HTTP_CONCURRENCY:-16}
mem_peers=${MEM_PEERS:-1M}
mem_torrents=${MEM_TORRENTS:-200k}
read -r -a hayate_flags <<< "${HAYATE_FLAGS:-}"
hayate=${TARGET_DIR:-target}/release/hayate
load=tools/load/target/release/hayate-load
# The part of each run left out of the figures (start-up, first contacts).
warm=$(( secs / 3 )); (( warm >= 1 )) || warm=1
(( secs > warm )) || { echo "compare: SECONDS must be at least 2"; exit 2; }
hz=$(getconf CLK_TCK)

for s in $scenarios; do
    case $s in
        udp | http-close | http-keepalive | memory | latency) ;;
        *) echo "compare: unknown scenario $s (udp http-close http-keepalive memory latency)"; exit 2 ;;
    esac
done
wants() { [[ " $scenarios " == *" $1 "* ]]; }

# --- Setup: refuse a busy port, build, install, pin, socket buffers. -----

busy() { ss -Hltun "sport = :$port" | grep -q .; }
if busy; then
    echo "compare: port $port is in use (TCP or UDP); stop that or set BENCH_PORT:"
    ss -Hltunp "sport = :$port"
    exit 2
fi

[ -x "$hayate" ] || cargo build --release --locked
[ -x "$load" ] || make -s load

sudo=
[ "$(id -u)" = 0 ] || sudo=sudo
need_aquatic=0 need_ot=0
{ wants udp || wants memory; } && need_aquatic=1
{ wants http-close || wants http-keepalive || wants memory; } && need_ot=1
if (( need_aquatic )); then
    # aquatic_udp's default features no longer build.
    command -v aquatic_udp >/dev/null || cargo install aquatic_udp --no-default-features
    if wants udp; then
        command -v aquatic_udp_load_test >/dev/null || cargo install aquatic_udp_load_test
    fi
fi
if (( need_ot )) && ! command -v opentracker >/dev/null; then
    echo "compare: installing opentracker (Debian package)"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get install -y -q opentracker >/dev/null ||
        { $sudo apt-get update -q >/dev/null && $sudo apt-get install -y -q opentracker >/dev/null; }
    # The package enables opentracker.service (port 6969, its own whitelist);
    # under systemd it is started at once. We run our own on $port.
    if [ -d /run/systemd/system ]; then
        echo "compare: stopping and disabling the packaged opentracker.service"
        $sudo systemctl disable --now opentracker.service || true
    fi
fi

tpin=() lpin=()
if command -v taskset >/dev/null && [ "$(nproc --all)" -ge 2 ]; then
    tpin=(taskset -c 0) lpin=(taskset -c 1)
else
    echo "compare: WARNING: no taskset or a single core: tracker and load unpinned, figures not comparable"
fi

# Both UDP trackers ask for 8 MB receive buffers; the kernel clamps to this.
rmem=$(sysctl -n net.core.rmem_max)
if (( rmem < 8388608 )); then
    if [ "$(id -u)" = 0 ]; then
        sysctl -q -w net.core.rmem_max=8388608
        echo "compare: note: set net.core.rmem_max $rmem -> 8388608 (UDP receive buffers; not restored)"
    else
        echo "compare: WARNING: net.core.rmem_max is $rmem; run as root or sysctl -w net.core.rmem_max=8388608"
    fi
fi

work=$(mktemp -d)
# opentracker drops to user nobody, which must read its whitelist here.
chmod 755 "$work"
tpid='' lpid=''
stop() { # PID: TERM, then KILL if it lingers; reaps it.
    local pid=$1
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    [ -n "$lpid" ] && stop "$lpid"
    [ -n "$tpid" ] && stop "$tpid"
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 2' INT TERM

# --- Trackers. ----------------------------------------------------------

# Same request mix as the UDP load: 100k torrents, 200k peers, announce
# 100 : scrape 1; hayate-load's default seed, so these are the hashes it sends.
"$load" hashes --torrents 100k --print-hashes "$work/allow-100k.txt"
"$load" hashes --torrents "$mem_torrents" --print-hashes "$work/allow-mem.txt"
chmod 644 "$work"/allow-*.txt

aquatic_conf "$work/aquatic.toml" "$port"

# start NAME [ARGS...]: starts tracker NAME pinned to core 0 (pid in $tpid),
# waits until its port is bound.
start() {
    local name=$1; shift
    for _ in $(seq 50); do busy || break; sleep 0.1; done
    busy && { echo "compare: port $port still busy before starting $name"; exit 2; }
    case $name in
        hayate)
            # hayate refuses a flag given twice: ARGS may name another UDP address.
            local udp=(--udp-listen "127.0.0.1:$port")
            [[ " $* " == *" --udp-listen "* ]] && udp=()
            "${tpin[@]}" "$hayate" --config /dev/null --workers 1 --log-level warn \
                --http-listen "127.0.0.1:$port" "${udp[@]}" \
                "${hayate_flags[@]}" "$@" > "$work/tracker.log" 2>&1 & ;;
        aquatic_udp)
            "${tpin[@]}" aquatic_udp -c "$work/aquatic.toml" > "$work/tracker.log" 2>&1 & ;;
        opentracker)
            # -i before -p/-P: the ports bind on the address named before them.
            "${tpin[@]}" opentracker -i 127.0.0.1 -p "$port" -P "$port" "$@" \
                > "$work/tracker.log" 2>&1 & ;;
    esac
    tpid=$!
    for _ in $(seq 100); do
        busy && return 0
        kill -0 "$tpid" 2>/dev/null || break
        sleep 0.1
    done
    echo "compare: $name did not start:"; cat "$work/tracker.log"; exit 2
}

# opentracker reads its whitelist in a thread after binding: until then it
# refuses every hash. Announce one whitelisted peer until it is accepted.
await_whitelist() { # TORRENTS
    for _ in $(seq 50); do
        "$load" fill --udp "127.0.0.1:$port" --peers 1 --torrents "$1" --timeout 200ms \
            2>/dev/null | grep -q '^fill: 1 of 1 ' && return 0
        sleep 0.2
    done
    echo "compare: opentracker never accepted a whitelisted hash:"; cat "$work/tracker.log"; exit 2
}

finish() { stop "$tpid"; tpid=; }

# Seconds since the epoch, with fractions.
now() { date +%s.%N; }
# sleep_until T: sleeps until epoch time T (no-op if past).
sleep_until() { sleep "$(awk -v t="$1" -v n="$(now)" 'BEGIN { d = t - n; print (d > 0 ? d : 0) }')"; }
# "time tracker-ticks load-ticks"
sample() { echo "$(now) $(ticks "$tpid") $(ticks "$lpid")"; }

# measure SCENARIO NAME RUN FROM TO -- LOAD...: runs LOAD on core 1 against
# the running tracker and samples both processes' CPU time FROM seconds
# after its start (where its summary starts) and last just before TO or its
# exit, whichever comes first (the load generator must still be there to be
# read). The busy shares are ratios over a steady run, so a window a few
# hundred ms off the summary's does not bias them. Appends the run to results.
measure() {
    local scen=$1 name=$2 run=$3 from=$4 to=$5; shift 6
    local t0; t0=$(now)
    "${lpin[@]}" "$@" > "$work/load.out" 2>&1 &
    lpid=$!
    local a b s end
    sleep_until "$(awk -v t="$t0" -v d="$from" 'BEGIN { printf "%.3f", t + d }')"
    a=$(sample)
    b=$a
    end=$(awk -v t="$t0" -v d="$to" 'BEGIN { printf "%.3f", t + d - 0.1 }')
    while kill -0 "$lpid" 2>/dev/null && awk -v e="$end" -v n="$(now)" 'BEGIN { exit !(n < e) }'; do
        sleep 0.25
        s=$(sample)
        # Both still alive when read (ticks of a gone process read as 0).
        [[ $s != *" 0" && $s != *" 0 "* ]] && b=$s
    done
    wait "$lpid" || true
    lpid=
    local rps connects=
    if [[ $1 == aquatic_udp_load_test ]]; then
        rps=$(awk '/Average responses per second/ {print $5}' "$work/load.out")
    else
        rps=$(awk '/^responses\/s:/ {print $2}' "$work/load.out")
        connects=$(awk '/^responses:/ {gsub(/\(/, "", $6); print $2 + $4, $6}' "$work/load.out")
    fi
    if [ -z "$rps" ]; then
        echo "compare: $scen $name: no figure from the load generator:"; tail -n 20 "$work/load.out"
        rps=0
    fi
    local errors; errors=$(awk '/^errors:/ {print $2}' "$work/load.out")
    awk -v scen="$scen" -v name="$name" -v run="$run" -v rps="$rps" -v hz="$hz" \
        -v a="$a" -v b="$b" -v conn="$connects" -v errors="${errors:-0}" -v out="$work/results" '
        BEGIN {
            split(a, x, " "); split(b, y, " ")
            wall = y[1] - x[1]
            busy = (y[2] - x[2]) / hz / wall; lbusy = (y[3] - x[3]) / hz / wall
            us = rps > 0 ? busy / rps * 1e6 : 0
            cap = busy > 0 ? rps / busy : 0
            cpr = "-"
            if (conn != "") { split(conn, c, " "); if (c[1] > 0) cpr = sprintf("%.2f", c[2] / c[1]) }
            printf "%-15s %-12s run %-2d %9.0f resp/s %7.2f us/resp  tracker core %3.0f%%  load core %3.0f%%  capacity %9.0f/s", \
                scen, name, run, rps, us, busy * 100, lbusy * 100, cap
            if (cpr != "-") printf "  conn/resp %s", cpr
            if (errors > 0) printf "  errors %d", errors
            printf "\n"
            printf "run %s %s %f %f %f %f %f %s %d\n", scen, name, rps, us, busy, lbusy, cap, cpr, errors >> out
        }'
}

# --- Scenarios. ---------------------------------------------------------

echo "compare: $(date -u +%FT%TZ), scenarios: $scenarios; $pairs pair(s) x ${secs}s (first ${warm}s left out); port $port"
echo "compare: hayate $(git describe --always --dirty 2>/dev/null || echo '?') --workers 1${HAYATE_FLAGS:+ $HAYATE_FLAGS}; tracker ${tpin[*]:-unpinned}, load ${lpin[*]:-unpinned}"
(( need_aquatic )) && echo "compare: aquatic_udp $(aquatic_udp --version 2>/dev/null | awk '{print $NF}') socket_workers = 1"
(( need_ot )) && echo "compare: opentracker $(dpkg-query -W -f '${Version}' opentracker 2>/dev/null || echo '?') (Debian: whitelist build, IPv4 only; its network loop is one thread)"
: > "$work/results"

if wants udp; then
    udp_load_conf "$work/load.toml" "$port" "$secs" $((secs - warm))
    echo
    echo "== udp: aquatic_udp_load_test, 1 load worker, 100k torrents, 200k peers, announce 100 : scrape 1"
    echo "   judged on capacity (responses per tracker-core-second): one load core often cannot saturate one tracker core"
    for r in $(seq "$pairs"); do
        # aquatic_udp_load_test summarises the last summarize_last seconds
        # and sometimes runs a second past its duration.
        start hayate
        measure udp hayate "$r" "$warm" $((secs + 1)) -- aquatic_udp_load_test -c "$work/load.toml"
        finish
        start aquatic_udp
        measure udp aquatic_udp "$r" "$warm" $((secs + 1)) -- aquatic_udp_load_test -c "$work/load.toml"
        finish
    done
fi

# HTTP: both trackers check the same allowlist (Debian's opentracker is
# built with a whitelist and tracks nothing without one). All the load comes
# from 127.0.0.1, so hayate's per-address connection cap (64, which
# opentracker does not have) is lifted.
http_scenario() { # SCENARIO on|off
    local scen=$1 ka=$2
    echo
    echo "== $scen: hayate-load --http --keepalive $ka, 1 thread x $http_conc connections, 100k torrents, 200k peers, scrape 1/100"
    echo "   both trackers check the same 100k-hash allowlist; conn/resp = TCP connections opened per response"
    for r in $(seq "$pairs"); do
        start hayate --allowlist "$work/allow-100k.txt" --http-max-connections-per-ip 100000
        measure "$scen" hayate "$r" "$warm" "$secs" -- "$load" --http "127.0.0.1:$port" --keepalive "$ka" \
            --threads 1 --concurrency "$http_conc" --duration "${secs}s" --warmup "${warm}s"
        finish
        start opentracker -w "$work/allow-100k.txt"
        await_whitelist 100k
        measure "$scen" opentracker "$r" "$warm" "$secs" -- "$load" --http "127.0.0.1:$port" --keepalive "$ka" \
            --threads 1 --concurrency "$http_conc" --duration "${secs}s" --warmup "${warm}s"
        finish
    done
}
wants http-close && http_scenario http-close off
wants http-keepalive && http_scenario http-keepalive on

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$tpid/status"; }
# mem_run LABEL NAME ADDR: fill the running tracker, print bytes per peer.
mem_run() {
    local label=$1 name=$2 addr=$3
    sleep 1
    local before; before=$(rss_kb)
    local stats=()
    [ "$name" = hayate ] && stats=(--stats-url "http://127.0.0.1:$port/stats")
    # A fill never gives up on a silent tracker: bound it.
    "${lpin[@]}" timeout 600 "$load" fill --udp "$addr" --peers "$mem_peers" \
        --torrents "$mem_torrents" "${stats[@]}" > "$work/fill.out" 2>&1 || true
    sleep 1
    local after; after=$(rss_kb)
    local accepted peers
    accepted=$(awk '/^fill:/ {print $2}' "$work/fill.out")
    peers=$accepted
    [ "$name" = hayate ] && peers=$(awk '/^tracker:/ {gsub(/,/, ""); print $5}' "$work/fill.out")
    awk -v label="$label" -v name="$name" -v b="$before" -v a="$after" -v p="${peers:-0}" \
        -v acc="${accepted:-0}" -v out="$work/results" '
        BEGIN {
            bpp = p > 0 ? (a - b) * 1024 / p : 0
            printf "%-15s %-12s %8d peers (%d announces accepted)  VmRSS %7d -> %7d kB  %6.1f bytes/peer\n", \
                label, name, p, acc, b, a, bpp
            printf "mem %s %s %f %d\n", label, name, bpp, p >> out
        }'
    if [ "${accepted:-0}" = 0 ]; then
        echo "compare: $name accepted nothing:"; tail -n 5 "$work/fill.out"
    fi
}
if wants memory; then
    echo
    echo "== memory: fill $mem_peers peers over $mem_torrents torrents over UDP, VmRSS after - before, / peers"
    echo "   hayate: peers from its /stats; the others: announces accepted. opentracker gets a whitelist of those torrents"
    start hayate
    mem_run memory-ipv4 hayate "127.0.0.1:$port"
    finish
    start aquatic_udp
    mem_run memory-ipv4 aquatic_udp "127.0.0.1:$port"
    finish
    start opentracker -w "$work/allow-mem.txt"
    await_whitelist "$mem_torrents"
    mem_run memory-ipv4 opentracker "127.0.0.1:$port"
    finish
    start hayate --udp-listen "[::1]:$port"
    mem_run memory-ipv6 hayate "[::1]:$port"
    finish
fi

if wants latency; then
    echo
    half=$(awk '$1 == "run" && $2 == "udp" && $3 == "hayate" {print $4}' "$work/results" |
        sort -n | awk '{v[NR] = $1} END {if (NR) print int((NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) / 2)}')
    # What hayate-load itself can send from one core (closed loop): it is
    # slower per request than aquatic_udp_load_test, so half of hayate's udp
    # rate can be more than it sends, and then its own backlog is all the
    # latency shows.
    start hayate
    "${lpin[@]}" "$load" --udp "127.0.0.1:$port" --concurrency 32 --duration "${secs}s" \
        --warmup "${warm}s" > "$work/max.out" 2>&1 || true
    finish
    max=$(awk '/^responses\/s:/ {print $2}' "$work/max.out")
    max=${max:-0}
    # Open loop needs headroom on its own core: past about this share of its
    # closed-loop maximum its own queueing shows up in the latency.
    cap=$(( max * 60 / 100 ))
    if [ -n "${LATENCY_RATE:-}" ]; then
        rate=$LATENCY_RATE why="LATENCY_RATE"
    elif [ -z "$half" ]; then
        rate=$(( max / 2 )) why="no udp scenario: half of hayate-load's closed-loop $max/s"
    elif (( half > cap )); then
        rate=$cap why="CAPPED: half of hayate's udp median is $half/s, but hayate-load sends at most $max/s from one core (closed loop); 60% of that"
    else
        rate=$half why="half of hayate's median udp rate"
    fi
    echo "== latency: hayate-load UDP open loop at $rate requests/s ($why)"
    (( rate > 0 )) || { echo "compare: latency: no rate to run at"; exit 2; }
    start hayate
    "${lpin[@]}" "$load" --udp "127.0.0.1:$port" --rate "$rate" --duration "${secs}s" \
        --warmup "${warm}s" > "$work/lat.out" 2>&1 || true
    finish
    sed -n '/^responses/,$p' "$work/lat.out" | sed 's/^/   /'
    awk -v rate="$rate" -v capped="$([[ $why == CAPPED* ]] && echo 1 || echo 0)" '
        function us(s) {
            if (s ~ /ns$/) return s / 1000
            if (s ~ /us$/) return s + 0
            if (s ~ /ms$/) return s * 1000
            return s * 1e6
        }
        /^latency:/ { p50 = us($3); p99 = us($5); p999 = us($7) }
        /^send lag:/ { lag = us($4) }
        /^responses\/s:/ { got = $2 }
        /^errors:/ { errors = $2 }
        END { printf "lat latency hayate %f %f %f %d %d %d %f %d\n", p50, p99, p999, rate, got, errors, lag, capped }
    ' "$work/lat.out" >> "$work/results"
fi

# --- Medians, ratios, verdicts. -----------------------------------------

echo
python3 - "$work/results" "$pairs" <<'PY'
import statistics, sys

rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
pairs = int(sys.argv[2])
runs = {}
for r in rows:
    if r[0] == "run":
        runs.setdefault((r[1], r[2]), []).append(r)
summary = []
status = 0

def med(rs, i):
    return statistics.median(float(r[i]) for r in rs)

targets = {"udp": ("aquatic_udp", 1.25), "http-close": ("opentracker", 1.2),
           "http-keepalive": ("opentracker", None)}
for scen, (other, target) in targets.items():
    h, o = runs.get((scen, "hayate")), runs.get((scen, other))
    if not h or not o:
        continue
    print(f"median {scen}:")
    m = {}
    for name, rs in (("hayate", h), (other, o)):
        m[name] = {k: med(rs, i) for k, i in (("rps", 3), ("us", 4), ("busy", 5), ("cap", 7))}
        cpr = [float(r[8]) for r in rs if r[8] != "-"]
        extra = f", {statistics.median(cpr):.2f} connections per response" if cpr else ""
        x = m[name]
        print(f"  {name:<12} {x['rps']:9.0f} resp/s {x['us']:7.2f} us/resp  tracker core {x['busy'] * 100:3.0f}%"
              f"  capacity {x['cap']:9.0f}/s{extra}")
    # The verdict is the median of the per-pair ratios: each pair ran back
    # to back, so drift of the machine between pairs cancels out of it. The
    # ratio of the two medians (printed too) takes each tracker's median
    # from different pairs, where that drift does not cancel.
    ratios = sorted(float(a[7]) / float(b[7]) for a, b in zip(h, o) if float(b[7]) > 0)
    cap = statistics.median(ratios) if ratios else 0
    of_medians = m["hayate"]["cap"] / m[other]["cap"] if m[other]["cap"] else 0
    rps = m["hayate"]["rps"] / m[other]["rps"] if m[other]["rps"] else 0
    pairs_text = " ".join(f"{x:.2f}" for x in ratios)
    print(f"  ratio hayate/{other}: capacity {cap:.2f}x (median of the pairs: {pairs_text}; "
          f"ratio of the medians {of_medians:.2f}x), responses/s {rps:.2f}x, "
          f"CPU per response {m['hayate']['us'] / m[other]['us']:.2f}x (lower is better)")
    idle = [n for n in m if m[n]["busy"] < 0.9]
    if idle:
        print(f"  note: {' and '.join(idle)} under 90% busy: the load generator (or the wait for it) set "
              "responses/s there, so compare capacity")
    if target is None:
        verdict, tgt = "-", "(report)"
    else:
        verdict, tgt = ("PASS" if cap >= target else "FAIL"), f">= {target}x"
    if verdict == "FAIL":
        status = 1
    summary.append((f"{scen} capacity/s", f"{m['hayate']['cap']:.0f}", f"{other} {m[other]['cap']:.0f}",
                    f"{cap:.2f}x", tgt, verdict))

mem = {(r[1], r[2]): (float(r[3]), int(r[4])) for r in rows if r[0] == "mem"}
for label, target in (("memory-ipv4", 32), ("memory-ipv6", 48)):
    if (label, "hayate") not in mem:
        continue
    bpp, peers = mem[(label, "hayate")]
    others = ", ".join(f"{n} {v[0]:.1f}" for (l, n), v in mem.items() if l == label and n != "hayate")
    ok = peers > 0 and bpp <= target
    status |= 0 if ok else 1
    summary.append((f"{label} B/peer", f"{bpp:.1f}", others or "-", f"{bpp:.1f} B", f"<= {target} B",
                    "PASS" if ok else "FAIL"))

for r in rows:
    if r[0] == "lat":
        p50, p99, p999 = float(r[3]), float(r[4]), float(r[5])
        rate, got, errors, lag, capped = int(r[6]), int(r[7]), int(r[8]), float(r[9]), r[10] == "1"
        ok = got > 0 and p99 < 1000
        status |= 0 if ok else 1
        if got < 0.95 * rate:
            print(f"note: latency: hayate-load sent {got}/s of {rate}/s, up to {lag:.0f} us late: "
                  "its own core was short, and that lateness is in the latency figures")
        summary.append(("latency p99 (us)", f"{p99:.0f}", "-",
                        f"{p50:.0f}/{p99:.0f}/{p999:.0f} us p50/p99/p99.9 at {got}/s{' (capped)' if capped else ''}, {errors} errors",
                        "< 1000 us", "PASS" if ok else "FAIL"))

head = ("scenario", "hayate", "other", "ratio/figure", "target", "verdict")
table = [head] + summary
w = [max(len(row[i]) for row in table) for i in range(len(head))]
print()
print(f"summary ({pairs} pair{'s' if pairs != 1 else ''}; throughput verdicts on capacity: responses per tracker-core-second)")
for row in table:
    print("  " + "  ".join(c.ljust(w[i]) for i, c in enumerate(row)).rstrip())
sys.exit(status)
PY
