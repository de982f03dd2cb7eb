# shellcheck shell=bash
# Sourced by compare.sh and same-core.sh: what both need, said once. How
# aquatic_udp and aquatic_udp_load_test are configured for issue 5's UDP
# scenario (1 socket worker; 100k torrents, 200k peers, announce 100 :
# scrape 1, no connects once connected), and how a process's CPU time is
# read.

# ticks PID: utime + stime in clock ticks, all threads (0 once it is gone).
# The fields are counted after the `)` that ends the command name, which
# may itself hold spaces.
ticks() {
    local s
    s=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
    s=${s##*) }
    awk '{print $12 + $13}' <<< "$s"
}

# aquatic_conf FILE PORT: aquatic_udp's defaults with one socket worker on
# 127.0.0.1:PORT.
aquatic_conf() {
    aquatic_udp -p > "$1" 2>/dev/null || true
    sed -i -e 's/^socket_workers = .*/socket_workers = 1/' \
        -e "s/^address = .*/address = \"127.0.0.1:$2\"/" "$1"
}

# udp_load_conf FILE PORT DURATION SUMMARIZE: aquatic_udp_load_test at
# 127.0.0.1:PORT for DURATION seconds, summarising the last SUMMARIZE.
udp_load_conf() {
    aquatic_udp_load_test -p > "$1" 2>/dev/null || true
    sed -i -e "s/^server_address = .*/server_address = \"127.0.0.1:$2\"/" \
        -e "s/^duration = .*/duration = $3/" \
        -e "s/^summarize_last = .*/summarize_last = $4/" \
        -e 's/^number_of_torrents = .*/number_of_torrents = 100000/' \
        -e 's/^number_of_peers = .*/number_of_peers = 200000/' \
        -e 's/^weight_connect = .*/weight_connect = 0/' \
        -e 's/^weight_announce = .*/weight_announce = 100/' \
        -e 's/^weight_scrape = .*/weight_scrape = 1/' "$1"
}
