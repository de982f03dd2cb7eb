#!/usr/bin/env bash
# Private mode's cost: one hayate binary run twice at once on the tracker
# core, `--mode public` and `--mode private` (Gazelle/Ocelot: users by
# passkey, registered torrents, credit committed to SQLite every FLUSH_INTERVAL), each
# under its own hayate-load on the load core, as benches/same-core.sh does
# for two builds: both see the same moments of the machine, and the figure
# is CPU time per request (/proc/PID/stat, every thread: the private one's
# flusher and its SQLite commits included) and capacity (requests per
# second of tracker CPU), private / public per round. A round's span runs
# from a moment when the private tracker has nothing uncommitted to the
# next such moment after the loads end, so the flusher's work for every
# request in it is counted, however far behind a saturated core pushed it
# (it runs in the idle scheduling class); requests are the trackers' own
# counters.
#
#   benches/private.sh                  udp http-close http-keepalive latency
#   benches/private.sh udp latency      some of them
#
#   udp             hayate-load --udp, 1 thread x 32 in flight each, no scrapes
#                   (--scrape-ratio 0: a private hayate refuses UDP scrapes,
#                   which carry no passkey)
#   http-close      hayate-load --http --keepalive off, 1 thread x 16 connections each,
#                   1 request in 100 a scrape (private: /<passkey>/scrape)
#   http-keepalive  the same with keep-alive on
#   latency         the private tracker alone (public one stopped): UDP open
#                   loop at half its udp capacity (capped at 60% of what
#                   hayate-load reaches closed loop), p50/p99/p99.9, quiet,
#                   then again while 1,000 update_torrent calls/s (freetorrent
#                   toggled 0/1 on random registered torrents) hit the control
#                   API from 32 keep-alive connections; each phase says how
#                   many commits ran meanwhile and their size
#
# Both trackers: --workers 1, the same TORRENTS torrents; the public one
# without an allowlist; the private one registered once, before the first
# round, with `hayate-load register` (USERS users, TORRENTS torrents); both
# live through every round (a new round's peers re-announce into the swarms
# the last one left, in both). Private loads run with --passkeys USERS (peer
# i is user i % USERS; uploaded/downloaded grow at each re-announce).
#
# Needs target/release/hayate (`make build`) and
# tools/load/target/release/hayate-load (`make load`); builds nothing.
# Knobs (environment): ROUNDS (4), SECONDS (10 measured per round),
# TORRENTS (100k), USERS (100k), PEERS (1M: a peer re-announces less often
# than the flusher commits, so no two announces of a peer share a row, as
# on a real site), BENCH_PORT (3070: public on it, private on the next,
# TCP and UDP), TRACKER_CORE (0), LOAD_CORE (1),
# LATENCY_RATE (requests/s; default above), CONTROL_RATE (1000 calls/s),
# FLUSH_INTERVAL (the private tracker's flush_interval, 3s), DB_DIR (where
# its database goes: a temporary directory under TMPDIR; /dev/shm takes the
# disk's writes out of the picture), MYSQL (a MariaDB/MySQL server URL such
# as mysql://root@127.0.0.1:3306: the private tracker then commits to a
# Gazelle database made there for the run from tests/mysql/$GAZELLE_SCHEMA.sql
# (classic by default), with USERS users and TORRENTS torrents rows, and
# dropped at the end; needs a binary from `make build-mysql`), LOAD_FIFO
# (a SCHED_FIFO priority for the load generator: with a database server on
# the same cores, its own scheduling delays stay out of the figures),
# HAYATE (the binary; target/release/hayate).
secs=${SECONDS:-0}
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=benches/shared.sh
. benches/shared.sh
(( secs >= 2 )) || secs=10
rounds=${ROUNDS:-4}
torrents=${TORRENTS:-100000} users=${USERS:-100000} peers=${PEERS:-1000000}
tcore=${TRACKER_CORE:-0} lcore=${LOAD_CORE:-1}
base=${BENCH_PORT:-3070}
control_rate=${CONTROL_RATE:-1000}
flush=${FLUSH_INTERVAL:-3s}
db_dir=${DB_DIR:-}
mysql_url=${MYSQL:-}
gazelle_schema=${GAZELLE_SCHEMA:-classic}
mysql_db=hayate_bench_$$
# LOAD_FIFO=N: the load generator runs in SCHED_FIFO at priority N, so a
# database server sharing the cores cannot delay its sending and receiving
# (its lag would otherwise count as the tracker's latency).
load_prefix=
[[ -z ${LOAD_FIFO:-} ]] || load_prefix="chrt -f $LOAD_FIFO"
hayate=${HAYATE:-target/release/hayate}
load=tools/load/target/release/hayate-load
scenarios=("$@")
(( ${#scenarios[@]} )) || scenarios=(udp http-close http-keepalive latency)
for s in "${scenarios[@]}"; do
    case $s in udp | http-close | http-keepalive | latency) ;;
        *) sed -n '2,/^[^#]/{/^#/p}' "$0"; exit 2 ;;
    esac
done
wants() { [[ " ${scenarios[*]} " == *" $1 "* ]]; }
[ -x "$hayate" ] || { echo "private.sh: needs $hayate (make build)"; exit 2; }
[ -x "$load" ] || { echo "private.sh: needs $load (make load)"; exit 2; }
command -v python3 >/dev/null || { echo "private.sh: needs python3"; exit 2; }
for p in "$base" $((base + 1)); do
    if ss -Htuan "sport = :$p" | grep -q .; then
        echo "private.sh: port $p is in use (BENCH_PORT)"; exit 2
    fi
done

work=$(mktemp -d)
db_dir=${db_dir:-$work}
rm -f "$db_dir"/hayate-private-bench.db*
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work" "$db_dir"/hayate-private-bench.db*; [[ -z $mysql_url ]] || mariadb -uroot -e "DROP DATABASE IF EXISTS $mysql_db" || true' EXIT
# Copies: a rebuild during the run must not change what is measured.
cp "$hayate" "$work/hayate" && cp "$load" "$work/hayate-load"
hayate_src=$hayate hayate=$work/hayate load=$work/hayate-load
hz=$(getconf CLK_TCK)
# Private mode's secrets: 32 characters each.
site=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
report=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
common=(--config /dev/null --workers 1 --log-level warn --http-max-connections-per-ip 100000)
pub_pid= priv_pid=

# start NAME PORT FLAGS...: a hayate on PORT (TCP and UDP), pinned to the
# tracker core; waits until it listens. Sets NAME_pid.
start() {
    local name=$1 port=$2
    shift 2
    taskset -c "$tcore" "$hayate" "${common[@]}" --udp-listen "127.0.0.1:$port" \
        --http-listen "127.0.0.1:$port" "$@" > "$work/$name.log" 2>&1 &
    local pid=$!
    printf -v "${name}_pid" %s "$pid"
    for _ in $(seq 100); do
        ss -Hltn "sport = :$port" | grep -q . && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "private.sh: $name hayate did not start:"; cat "$work/$name.log"; exit 1
}

# run_load NAME PORT ARGS...: hayate-load run on the load core for SECONDS + 6 s
# (5 s warm-up), output in $work/NAME.out.
run_load() {
    local name=$1 port=$2
    shift 2
    $load_prefix taskset -c "$lcore" "$load" run --torrents "$torrents" --peers "$peers" --seed 1 \
        --duration "$((secs + 6))s" --warmup 5s "$@" > "$work/$name.out" 2>&1 &
    echo $! > "$work/$name.lpid"
}

# thread_ticks PID COMM: ticks of PID's threads named COMM (0 when none).
thread_ticks() {
    local t n=0 s
    for t in /proc/"$1"/task/*; do
        [[ $(cat "$t/comm" 2>/dev/null) == "$2" ]] || continue
        s=$(cat "$t/stat" 2>/dev/null) || continue
        s=${s##*) }
        n=$(( n + $(awk '{print $12 + $13}' <<< "$s") ))
    done
    echo "$n"
}

# figure FILE: responses/s and errors of a hayate-load summary.
figure() {
    awk '/^responses\/s:/ {r = $2} /^errors:/ {e = $2} END {print r + 0, e + 0}' "$1"
}

# messages FILE NAME: the error replies a load saw, if any.
messages() {
    sed -n 's/^  error reply /  '"$2"' error reply /p' "$1"
    awk -v n="$2" '/^errors:/ && $2 > 0 {print "  " n " " $0}' "$1"
}

# udp_drops: receive-buffer drops so far of the private tracker's UDP
# socket, then of every other UDP socket on the machine (the loads').
udp_drops() {
    local hex
    hex=$(printf '%04X' $((base + 1)))
    awk -v p=":$hex" 'NR > 1 { if ($2 ~ p "$") h += $13; else o += $13 } END {printf "%d %d\n", h, o}' \
        /proc/net/udp /proc/net/udp6
}

# requests PORT: requests a tracker has served (HTTP and UDP, its stats page).
requests() {
    curl -s "http://127.0.0.1:$1/stats" |
        awk '/^hayate_(udp|http)_requests_total[{ ]/ {n += $NF} END {printf "%d\n", n}'
}

# settled: waits (at most 60 s) until the private tracker has committed
# everything handed to it: the oldest uncommitted delta is gone twice in a
# row, a flush interval apart, after the workers' hand-over (100 ms).
settled() {
    local age
    sleep 0.5
    for _ in $(seq 60); do
        age=$(curl -s "http://127.0.0.1:$((base + 1))/stats" |
            awk '/^hayate_private_oldest_uncommitted_milliseconds / {print $2}')
        if [[ $age == 0 ]]; then
            sleep 3.2
            age=$(curl -s "http://127.0.0.1:$((base + 1))/stats" |
                awk '/^hayate_private_oldest_uncommitted_milliseconds / {print $2}')
            [[ $age == 0 ]] && return 0
        fi
        sleep 1
    done
    echo "private.sh: the private tracker did not settle (oldest uncommitted delta ${age:-?} ms)"
}

start pub "$base" --mode public
database="sqlite:$db_dir/hayate-private-bench.db" db_args=()
if [[ -n $mysql_url ]]; then
    # The site's tables, empty while hayate loads (it learns users and
    # torrents from `register` below, as from a site's control calls).
    mariadb -uroot -e "CREATE DATABASE $mysql_db"
    mariadb -uroot "$mysql_db" < "tests/mysql/$gazelle_schema.sql"
    database="$mysql_url/$mysql_db" db_args=(--gazelle-schema "$gazelle_schema")
fi
start priv $((base + 1)) --mode private --site-password "$site" --report-password "$report" \
    --database "$database" "${db_args[@]}" --flush-interval "$flush"
echo "machine load average at start: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) cores)"
echo "hayate: $hayate_src ($("$hayate" --version 2>/dev/null || echo '?')), public pid $pub_pid on :$base, private pid $priv_pid on :$((base + 1)); core $tcore; loads on core $lcore"
taskset -c "$lcore" "$load" register --http "127.0.0.1:$((base + 1))" --site-password "$site" \
    --torrents "$torrents" --passkeys "$users" --seed 1 | sed 's/^/  /'
if [[ -n $mysql_url ]]; then
    # The site's rows for the same ids (MariaDB's sequence tables), so every
    # commit updates real rows: credit by user id, counts by torrent id.
    if [[ $gazelle_schema == classic ]]; then
        site_rows="INSERT INTO users_main (ID, Username, Email, PassHash, Secret, Title, PermissionID, torrent_pass, Enabled)
            SELECT seq, concat('u', seq), '', '', '', '', 2, lpad(hex(seq), 32, '0'), '1' FROM seq_1_to_$users;"
    else
        site_rows="INSERT INTO users_main (ID, Username, Email, PassHash, PermissionID, torrent_pass, auth_key, Enabled)
            SELECT seq, concat('u', seq), '', '', 2, lpad(hex(seq), 32, '0'), '', '1' FROM seq_1_to_$users;
            INSERT INTO users_leech_stats (UserID) SELECT seq FROM seq_1_to_$users;
            INSERT INTO torrents_leech_stats (TorrentID) SELECT seq FROM seq_1_to_$torrents;"
    fi
    mariadb -uroot "$mysql_db" -e "$site_rows
        INSERT INTO torrents (ID, GroupID, info_hash, FileCount, FileList, Size)
            SELECT seq, 1, unhex(sha1(seq)), 1, '', 1 FROM seq_1_to_$torrents;"
    echo "  site rows: $users users, $torrents torrents in $mysql_url/$mysql_db ($gazelle_schema)"
fi
# The state after registration, for the record.
ticks_after_register=$(ticks "$priv_pid")
echo "  private tracker CPU so far (start + registration): $(( ticks_after_register * 1000 / hz )) ms"

results=$work/results
: > "$results"

# One scenario: ROUNDS rounds of both loads at once.
capacity() {
    local scen=$1 pub_args priv_args
    case $scen in
        udp) pub_args=(--udp "127.0.0.1:$base" --concurrency 32 --scrape-ratio 0)
             priv_args=(--udp "127.0.0.1:$((base + 1))" --concurrency 32 --scrape-ratio 0) ;;
        http-close) pub_args=(--http "127.0.0.1:$base" --keepalive off --threads 1 --concurrency 16)
                    priv_args=(--http "127.0.0.1:$((base + 1))" --keepalive off --threads 1 --concurrency 16) ;;
        http-keepalive) pub_args=(--http "127.0.0.1:$base" --keepalive on --threads 1 --concurrency 16)
                        priv_args=(--http "127.0.0.1:$((base + 1))" --keepalive on --threads 1 --concurrency 16) ;;
    esac
    echo
    echo "== $scen: ${pub_args[*]} (public) and the same with --passkeys $users (private), $torrents torrents, $peers peers"
    printf '%-6s %36s %36s %9s\n' round "public" "private" "cap p/p"
    for r in $(seq "$rounds"); do
        # The span measured: from a moment when the private tracker has
        # nothing uncommitted to the next one after the loads end. Every
        # request in it has had its flusher work done (and counted) in it,
        # however far a starved flusher had fallen behind while the core
        # was saturated; requests are the trackers' own counters (warm-up
        # included), CPU every thread's.
        settled
        local a0 b0 a1 b1 f0 f1 q0 p0 q1 p1 t0 t1
        a0=$(ticks "$pub_pid") b0=$(ticks "$priv_pid") f0=$(thread_ticks "$priv_pid" flusher)
        q0=$(requests "$base") p0=$(requests $((base + 1))) t0=$(date +%s.%N)
        run_load "pub-$scen-$r" "$base" "${pub_args[@]}"
        run_load "priv-$scen-$r" $((base + 1)) "${priv_args[@]}" --passkeys "$users"
        wait "$(cat "$work/pub-$scen-$r.lpid")" "$(cat "$work/priv-$scen-$r.lpid")" 2>/dev/null || true
        settled
        a1=$(ticks "$pub_pid") b1=$(ticks "$priv_pid") f1=$(thread_ticks "$priv_pid" flusher)
        q1=$(requests "$base") p1=$(requests $((base + 1))) t1=$(date +%s.%N)
        # shellcheck disable=SC2046
        python3 - $(figure "$work/pub-$scen-$r.out") $(figure "$work/priv-$scen-$r.out") \
            "$a0" "$a1" "$b0" "$b1" "$hz" "$t0" "$t1" "$r" "$scen" "$results" "$((f1 - f0))" \
            "$((q1 - q0))" "$((p1 - p0))" <<'PY'
import sys
ra, ea, rb, eb, a0, a1, b0, b1, hz, t0, t1 = (float(x) for x in sys.argv[1:12])
r, scen, results, flusher = sys.argv[12], sys.argv[13], sys.argv[14], float(sys.argv[15])
na, nb = float(sys.argv[16]), float(sys.argv[17])
span = t1 - t0
cpu_a, cpu_b = (a1 - a0) / hz, (b1 - b0) / hz
busy_a, busy_b = cpu_a / span, cpu_b / span
cap_a, cap_b = na / max(cpu_a, 1e-9), nb / max(cpu_b, 1e-9)
def fig(rps, busy, cap, errors):
    return f"{rps:6.0f}/s {busy * 100:3.0f}% {1e6 / cap:6.2f} us {cap:7.0f}/s e{errors:.0f}"
share = flusher / max(b1 - b0, 1)
print(f"{r:<6} {fig(ra, busy_a, cap_a, ea):>36} {fig(rb, busy_b, cap_b, eb):>36} {cap_b / cap_a:9.3f}"
      f"   flusher {share * 100:3.0f}% {share * 1e6 / cap_b:5.2f} us")
with open(results, "a") as f:
    f.write(f"{scen} {ra} {busy_a} {cap_a} {rb} {busy_b} {cap_b} {share}\n")
PY
        messages "$work/pub-$scen-$r.out" public
        messages "$work/priv-$scen-$r.out" private
    done
    python3 - "$scen" "$results" <<'PY'
import statistics, sys
scen, path = sys.argv[1], sys.argv[2]
rows = [[float(x) for x in l.split()[1:]] for l in open(path) if l.split()[0] == scen]
med = lambda i: statistics.median(r[i] for r in rows)
ratios = [r[5] / r[2] for r in rows]
# The same without the flusher thread's CPU (it would run on another core
# of a bigger machine): the announce path's own cost.
bare = [r[5] / (1 - r[6]) / r[2] for r in rows]
print(f"median: public {1e6 / med(2):.2f} us/req, capacity {med(2):.0f}/s; private {1e6 / med(5):.2f} us/req, "
      f"capacity {med(5):.0f}/s; private/public capacity {statistics.median(ratios):.3f} "
      f"(rounds {min(ratios):.3f}-{max(ratios):.3f}); without the flusher's CPU {statistics.median(bare):.3f}")
PY
}

for s in udp http-close http-keepalive; do
    if wants "$s"; then capacity "$s"; fi
done
wants udp || wants http-close || wants http-keepalive &&
    echo "(per tracker: requests/s, busy share of the core, CPU per request, capacity = requests per tracker-CPU-second, e = errors the load counted; cap p/p = private / public capacity; flusher = the private tracker's flusher thread (SQLite commits): its share of that tracker's CPU, and per request)"

if wants latency; then
    echo
    kill "$pub_pid" 2>/dev/null || true
    wait "$pub_pid" 2>/dev/null || true
    port=$((base + 1))
    half=$(python3 -c '
import statistics, sys
c = [float(l.split()[6]) for l in open(sys.argv[1]) if l.split()[0] == "udp"]
print(int(statistics.median(c) / 2) if c else "")' "$results")
    # What hayate-load itself sends from one core, closed loop, against the
    # private tracker alone: past about 60% of it, its own queueing is what
    # the latency shows.
    if [ -n "${LATENCY_RATE:-}" ]; then
        rate=$LATENCY_RATE why="LATENCY_RATE"
    else
        taskset -c "$lcore" "$load" run --udp "127.0.0.1:$port" --torrents "$torrents" --peers "$peers" \
            --seed 1 --passkeys "$users" --scrape-ratio 0 --concurrency 32 --duration "$((secs + 5))s" --warmup 5s \
            > "$work/max.out" 2>&1 || true
        max=$(figure "$work/max.out" | cut -d' ' -f1)
        cap=$(( ${max%.*} * 60 / 100 ))
        if [ -z "$half" ]; then
            rate=$(( ${max%.*} / 2 )) why="no udp scenario: half of hayate-load's closed-loop $max/s"
        elif (( half > cap )); then
            rate=$cap why="CAPPED: half of the private udp capacity is $half/s, hayate-load sends at most $max/s from one core closed loop; 60% of that"
        else
            rate=$half why="half of the private tracker's median udp capacity"
        fi
    fi
    (( rate > 0 )) || { echo "private.sh: latency: no rate to run at"; exit 2; }
    hashes=$work/hashes.txt
    "$load" hashes --torrents "$torrents" --seed 1 --print-hashes "$hashes"
    cat > "$work/control.py" <<'PY'
# CONTROL_RATE update_torrent calls/s for SECS seconds, freetorrent toggled
# on random registered torrents, from 32 keep-alive connections (a call is
# answered once its change is committed: one connection alone would wait
# out a commit per call); a summary.
import http.client, random, sys, threading, time
port, site, hashes, rate, secs = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), float(sys.argv[5])
hashes = open(hashes).read().split()
CONNS = 32
lock = threading.Lock()
lat, failures, reasons, sent = [], [0], {}, [0]
start = time.monotonic()
def run(k):
    conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=5)
    rng = random.Random(k)
    n = 0
    while True:
        # Connection k sends calls k, k + CONNS, k + 2 CONNS, ...: together
        # CONTROL_RATE/s on schedule.
        due = start + (k + n * CONNS) / rate
        if due - start >= secs:
            break
        now = time.monotonic()
        if due > now:
            time.sleep(due - now)
        h = rng.choice(hashes)
        t0 = time.monotonic()
        try:
            conn.request("GET", f"/{site}/update?action=update_torrent&info_hash={h}&freetorrent={n % 2}")
            body = conn.getresponse().read()
        except Exception as e:
            body = f"{type(e).__name__}: {e}".encode()
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=5)
        took = time.monotonic() - t0
        with lock:
            lat.append(took)
            sent[0] += 1
            if body != b"success":
                failures[0] += 1
                reasons[body[:80]] = reasons.get(body[:80], 0) + 1
        n += 1
threads = [threading.Thread(target=run, args=(k,)) for k in range(CONNS)]
for t in threads:
    t.start()
for t in threads:
    t.join()
took = time.monotonic() - start
lat.sort()
q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1e6 if lat else 0
print(f"control: {sent[0]} update_torrent calls in {took:.1f} s ({sent[0] / took:.0f}/s, {CONNS} connections), "
      f"{failures[0]} failures; call round trip (until committed) p50 {q(0.5):.0f} us, p99 {q(0.99):.0f} us, "
      f"max {lat[-1] * 1e6 if lat else 0:.0f} us")
for r, c in reasons.items():
    print(f"  control failure {c}x: {r!r}")
PY
    echo "== latency: the private tracker alone, hayate-load --udp --passkeys $users --scrape-ratio 0 open loop at $rate requests/s ($why), database in $db_dir"
    # Every peer announced once (its row inserted), and nothing left
    # uncommitted, before the phases: they measure re-announces.
    taskset -c "$lcore" "$load" run --udp "127.0.0.1:$port" --torrents "$torrents" --peers "$peers" \
        --seed 1 --passkeys "$users" --scrape-ratio 0 --rate "$rate" \
        --duration "$(( peers / rate + 2 ))s" > "$work/fill.out" 2>&1 || true
    settled
    for phase in quiet control; do
        drops0=$(udp_drops)
        local_stats=$(curl -s "http://127.0.0.1:$port/stats")
        rows0=$(awk '/^hayate_private_peer_rows_committed_total / {print $2}' <<< "$local_stats")
        batches0=$(awk '/^hayate_private_batches_committed_total / {print $2}' <<< "$local_stats")
        micros0=$(awk '/^hayate_private_commit_microseconds_total / {print $2}' <<< "$local_stats")
        run_load "lat-$phase" "$port" --udp "127.0.0.1:$port" --passkeys "$users" --scrape-ratio 0 \
            --rate "$rate"
        if [[ $phase == control ]]; then
            # Niced: on the load core it must not starve hayate-load's pacing.
            taskset -c "$lcore" nice -n 10 python3 "$work/control.py" "$port" "$site" "$hashes" "$control_rate" \
                "$((secs + 6))" > "$work/control.out" 2>&1 &
            echo $! > "$work/control.pid"
        fi
        # Read while the load's sockets are still open (it runs SECONDS + 6).
        sleep $((secs + 4))
        drops1=$(udp_drops)
        wait "$(cat "$work/lat-$phase.lpid")" 2>/dev/null || true
        local_stats=$(curl -s "http://127.0.0.1:$port/stats")
        rows1=$(awk '/^hayate_private_peer_rows_committed_total / {print $2}' <<< "$local_stats")
        batches1=$(awk '/^hayate_private_batches_committed_total / {print $2}' <<< "$local_stats")
        micros1=$(awk '/^hayate_private_commit_microseconds_total / {print $2}' <<< "$local_stats")
        drops="UDP receive-buffer drops meanwhile: hayate's socket $(( ${drops1% *} - ${drops0% *} )), every other socket (the load's) $(( ${drops1#* } - ${drops0#* } ))"
        commits="$((batches1 - batches0)) commits meanwhile, $(( (rows1 - rows0) / (batches1 - batches0 > 0 ? batches1 - batches0 : 1) )) peer rows and $(( (micros1 - micros0) / 1000 / (batches1 - batches0 > 0 ? batches1 - batches0 : 1) )) ms each on average"
        if [[ $phase == quiet ]]; then
            echo "-- no control load ($commits):"
            sed -n '/^responses/,$p' "$work/lat-$phase.out" | sed 's/^/   /'
            echo "   $drops"
        else
            wait "$(cat "$work/control.pid")" 2>/dev/null || true
            echo "-- with $control_rate update_torrent calls/s on the control API ($commits):"
            sed -n '/^responses/,$p' "$work/lat-$phase.out" | sed 's/^/   /'
            echo "   $drops"
            sed 's/^/   /' "$work/control.out"
        fi
    done
fi
if [ -n "$priv_pid" ] && kill -0 "$priv_pid" 2>/dev/null; then
    # The private tracker's view: its report page and refusals in its log.
    echo
    echo "private tracker's report (get=stats):"
    curl -s "http://127.0.0.1:$((base + 1))/$report/report?get=stats" | sed 's/^/  /'
    grep -v '^$' "$work/priv.log" | tail -5 | sed 's/^/  log: /' || true
fi
echo "machine load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
