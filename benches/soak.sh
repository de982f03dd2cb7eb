#!/usr/bin/env bash
# `make soak`: hayate under steady UDP load with churn for SOAK_MINUTES
# (default 60), to show that memory plateaus and latency stays flat while
# peers join, re-announce, complete, leave and vanish (time out).
#
#   1. start a release hayate on a free loopback port with a short
#      peer_timeout and reap_interval, so vanished peers really expire;
#   2. measure its maximum rate for ~10 s (closed loop);
#   3. run open loop at half that rate for SOAK_MINUTES, one table row a
#      minute (elapsed, tracker RSS and threads, torrents and peers from
#      /stats, requests/s, errors, p50/p99/p99.9), plus a light HTTP side
#      load (SOAK_HTTP_RATE requests/s, keep-alive off; 0 = none);
#   4. judge memory (max RSS of the last third vs the middle third) and stop
#      hayate with SIGTERM, which must end it with status 0.
#
# Tracker on core 0, load on core 1 (taskset), when there are two cores.
# Knobs: SOAK_MINUTES, SOAK_PORT (first port tried), SOAK_MAX_GROWTH (% of
# RSS growth still called a plateau), SOAK_HTTP_RATE, TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${SOAK_MINUTES:-60}
max_growth=${SOAK_MAX_GROWTH:-5}
http_rate=${SOAK_HTTP_RATE:-200}
hayate=${TARGET_DIR:-target}/release/hayate
load=tools/load/target/release/hayate-load
for f in "$hayate" "$load"; do
    [ -x "$f" ] || { echo "soak: $f missing (run make soak)"; exit 2; }
done

# A port free for both TCP and UDP.
port=
for p in $(seq "${SOAK_PORT:-17969}" $(( ${SOAK_PORT:-17969} + 100 ))); do
    if ! ss -Htuan "sport = :$p" | grep -q .; then port=$p; break; fi
done
[ -n "$port" ] || { echo "soak: no free port near ${SOAK_PORT:-17969}"; exit 2; }

tpin=() lpin=()
if command -v taskset >/dev/null && [ "$(nproc --all)" -ge 2 ]; then
    tpin=(taskset -c 0) lpin=(taskset -c 1)
fi
work=$(mktemp -d)
hpid=
side=
cleanup() {
    [ -n "$side" ] && kill "$side" 2>/dev/null || true
    [ -n "$hpid" ] && kill -TERM "$hpid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# Short timeouts: a vanished peer is gone within peer_timeout + reap_interval.
"${tpin[@]}" "$hayate" --config /dev/null \
    --http-listen "127.0.0.1:$port" --udp-listen "127.0.0.1:$port" \
    --announce-interval 60s --min-announce-interval 30s --announce-jitter 10s \
    --peer-timeout 2m --reap-interval 20s --log-level warn 2> "$work/hayate.log" &
hpid=$!
for _ in $(seq 100); do
    ss -Hltn "sport = :$port" | grep -q . && break
    kill -0 "$hpid" 2>/dev/null || { echo "soak: hayate did not start:"; cat "$work/hayate.log"; exit 1; }
    sleep 0.1
done
echo "soak: hayate pid $hpid on 127.0.0.1:$port (tcp+udp), ${tpin[*]:-unpinned}; load ${lpin[*]:-unpinned}"
echo "soak: $(date -u +%FT%TZ) start, $minutes minutes"

# 1. Maximum rate, closed loop.
"${lpin[@]}" "$load" --udp "127.0.0.1:$port" --duration 12s --warmup 2s \
    --concurrency 32 --seed 99 | tee "$work/max.out"
max=$(awk '/^responses\/s:/ {print $2}' "$work/max.out")
[ -n "$max" ] && [ "$max" -gt 0 ] || { echo "soak: no maximum rate measured"; exit 1; }
rate=$(( max / 2 ))
# Each peer re-announces every ~30 s (well inside peer_timeout); two peers
# per torrent on average, Zipf-skewed.
peers=$(( rate * 30 )); (( peers < 10000 )) && peers=10000; (( peers > 2000000 )) && peers=2000000
torrents=$(( peers / 2 ))
every=60s; (( minutes < 10 )) && every=10s
echo "soak: max $max responses/s; soak at $rate/s, $peers peers over $torrents torrents, a row every $every"

# 2. The soak, plus a light HTTP side load (new connection per request).
if (( http_rate > 0 )); then
    "${lpin[@]}" "$load" --http "127.0.0.1:$port" --keepalive off --rate "$http_rate" \
        --threads 1 --concurrency 4 --peers 20000 --torrents 10000 --seed 7 \
        --duration "$(( minutes * 60 + 20 ))s" --warmup 10s > "$work/http.out" 2>&1 &
    side=$!
fi
"${lpin[@]}" "$load" --udp "127.0.0.1:$port" --rate "$rate" --peers "$peers" \
    --torrents "$torrents" --duration "${minutes}m" --warmup 10s --report-every "$every" \
    --tracker-pid "$hpid" --stats-url "http://127.0.0.1:$port/stats" | tee "$work/soak.out"
if [ -n "$side" ]; then
    wait "$side" || true
    side=
    echo "soak: HTTP side load (keep-alive off, $http_rate/s):"
    sed -n '/^responses/,$p' "$work/http.out" | sed 's/^/  /'
fi

# 3. Verdicts.
status=0
read -r mid last < <(awk '/^tracker rss:/ {print $4, $10}' "$work/soak.out")
if [ -n "${mid:-}" ]; then
    growth=$(awk -v a="$mid" -v b="$last" 'BEGIN { printf "%.1f", (b / a - 1) * 100 }')
    if awk -v g="$growth" -v m="$max_growth" 'BEGIN { exit !(g <= m) }'; then
        echo "soak: memory PLATEAU: max RSS $mid kB (middle third) -> $last kB (last third), $growth% (limit $max_growth%)"
    else
        echo "soak: memory GROWING: max RSS $mid kB (middle third) -> $last kB (last third), $growth% (limit $max_growth%)"
        status=1
    fi
else
    echo "soak: too few rows for a memory verdict"
fi
errors=$(awk '/^errors:/ {print $2}' "$work/soak.out")
echo "soak: ${errors:-?} errors in the UDP soak"
kill -TERM "$hpid"
if wait "$hpid"; then
    echo "soak: hayate exited 0 after SIGTERM"
else
    echo "soak: hayate exited $? after SIGTERM"; status=1
fi
hpid=
if [ -s "$work/hayate.log" ]; then
    echo "soak: hayate's log (warnings and errors):"
    tail -n 20 "$work/hayate.log" | sed 's/^/  /'
fi
echo "soak: $(date -u +%FT%TZ) done, status $status"
exit $status
