#!/usr/bin/env python3
"""A real client against hayate: Enhanced CTorrent dnh3.3.2 (Debian's
`ctorrent`), one seeder and two leechers that find each other only
through hayate.

    ctorrent_suite.py [PATH-TO-HAYATE]      (or HAYATE_BIN=...)

One case, "http ipv4". ctorrent has no UDP tracker support and no IPv6:
it opens AF_INET sockets only, and refuses an announce URL with a
bracketed host ("error, invalid tracker url format!"), so "udp *" and
"http ipv6" are reported as skipped. It has no DHT, PEX or local peer
discovery either: the tracker is its only source of peers.

The case: a hayate of its own (announce interval 5 s, so the clients
re-announce during the test), a 1 MiB payload, a .torrent whose only
tracker is hayate's http://127.0.0.1 URL, and three ctorrent processes,
each on its own loopback address: the seeder on 127.0.0.2, the leechers
on 127.0.0.3 and 127.0.0.4, started once hayate has the seeder's first
announce. It passes when

- each instance listens on its own address, and every announce reaches
  hayate from that address (so hayate sees three distinct peers);
- every leecher tries the seeder's address and port, which only hayate
  could have told it, and ends with a file byte-identical to the seeder's;
- hayate then counts three seeders and no leecher (the leechers sent
  event=completed);
- on SIGTERM every instance sends event=stopped and exits 0, and hayate
  counts no peer left;
- hayate's announce counter for http/ipv4 rose by exactly the number of
  announces in its log, and the other three (proto, family) stayed 0.

ctorrent facts this relies on (checked against dnh3.3.2, not assumed):

- `-i IP` binds the listening socket *and* the tracker connection (it
  binds before connect), so hayate sees each instance's own source
  address. Its outgoing *peer* connections are not bound: they come from
  127.0.0.1, the kernel's source for the 127/8 route (so connecting to
  another 127.0.0.x destination does not change the source address).
- It drops every peer with its own IP from a tracker reply, whatever the
  port (btBasic::IpEquiv compares addresses only), and refuses a second
  connection from an IP it already has a peer at ("Connection from
  duplicate peer"). Three instances on one address would never connect,
  hence one address each. Because all peer connections arrive from
  127.0.0.1, the seeder accepts only the first leecher that connects; the
  other gets its copy from that leecher. Both are handed the seeder.
- It speaks HTTP/1.0 (no Host header for an IP tracker, no keep-alive),
  does not half-close after its request, and parses the reply only when
  the tracker closes the connection (even with a Content-Length): a
  tracker that kept an HTTP/1.0 connection open would stall it.
- Without a terminal it needs no daemon mode: stdin at /dev/null makes it
  print "End of input reached" and carry on.
- Its tracker timer, not the event, decides when completed and stopped
  go out: event=completed and event=stopped are sent about 15 s after
  the previous tracker contact, so SIGTERM is followed by ~15 s of
  "Quitting" before the stopped announce and exit.
- The seeder's first announce (event=started) goes out while its hash
  check of the payload is still running, with left > 0, so hayate counts
  it a leecher until its next announce (left=0, no event: a seeder never
  sends completed). `-f` (skip the check) would avoid that, but with `-f`
  dnh3.3.2's seeder stops contacting the tracker once it has uploaded:
  no re-announce, and no stopped announce on SIGTERM. So no `-f`.
- Each instance gets its own bitfield file (`-b`): the default is the
  .torrent's name plus ".bf", which the three would share.

Exit 0 when every case passes; the last line is
`interop-ctorrent: N passed, M failed`.
"""

import os
import re
import shutil
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import (  # noqa: E402
    Failed,
    announce_events,
    Suite,
    free_port,
    make_payload,
    make_torrent,
    same_file,
    wait_until,
)

CLIENT = "ctorrent"
PAYLOAD_BYTES = 1 << 20
PAYLOAD_SEED = 20240601  # fixed, so a failure is reproducible
SEEDER_IP = "127.0.0.2"
LEECHER_IPS = ("127.0.0.3", "127.0.0.4")
TRACKER_FLAGS = [
    "--announce-interval", "5s",
    "--min-announce-interval", "1s",
    "--announce-jitter", "0s",
]
DOWNLOAD_TIMEOUT = 30  # s; completion is reported on a 15 s timer
STOP_TIMEOUT = 25  # s; ctorrent waits ~15 s before its stopped announce

# Lines of ctorrent's log that mean the tracker refused or broke a request.
TRACKER_TROUBLE = re.compile(
    r"TRACKER FAILURE|TRACKER WARNING|Tracker response code|no HTTP header|"
    r"received nothing from tracker|received no response data|"
    r"did not supply peers|invalid peers list|invalid tracker url|tracker setup failed"
)


def client_version():
    """'Enhanced CTorrent dnh3.3.2 (Debian ctorrent 1.3.4.dnh3.3.2-5+b1)'.
    `ctorrent -h` prints the version first, on stderr, and exits 1."""
    try:
        out = subprocess.run(["ctorrent", "-h"], capture_output=True, text=True, timeout=10).stderr
        deb = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "ctorrent"],
                             capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired) as e:
        raise Failed(f"cannot run ctorrent or dpkg-query: {e}")
    m = re.search(r"Enhanced CTorrent \S+", out)
    if not m:
        raise Failed(f"cannot read the version from `ctorrent -h`: {out[:200]!r}")
    return f"{m.group(0)} (Debian ctorrent {deb or 'unknown'})"


# --------------------------------------------------------------------------
# One ctorrent instance
# --------------------------------------------------------------------------


class Instance:
    """A ctorrent process on its own loopback address, in its own directory."""

    def __init__(self, case, name, ip, torrent, seed_from=None):
        self.name = name
        self.ip = ip
        self.port = free_port()
        self.dir = os.path.dirname(case.path(name, "x"))
        self.file = os.path.join(self.dir, "payload.bin")
        argv = [
            "ctorrent",
            "-v",  # tracker contacts, peers handed out, connections
            "-i", ip,  # listen on ip; also binds the tracker connection
            "-p", self.port,
            "-s", self.file,
            "-b", os.path.join(self.dir, "payload.bf"),
            "-e", "1",  # seed for an hour after completing: until stopped
        ]
        if seed_from is not None:
            shutil.copyfile(seed_from, self.file)  # a copy: the original stays the reference
        self.proc = case.start(name, argv + [torrent], cwd=self.dir)

    def log(self):
        try:
            with open(self.proc.logfile, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def check(self):
        """Fails if the process died or logged a tracker complaint."""
        self.proc.check_alive()
        for line in self.log().splitlines():
            if TRACKER_TROUBLE.search(line):
                raise Failed(f"{self.name} ({self.ip}): tracker trouble: {line.strip()}")

    def listening(self):
        return f"Listening on {self.ip}:{self.port}" in self.log()

    def tried(self, other):
        """True once this instance connected or tried to connect to `other`'s
        listen endpoint, which only a tracker reply could have given it."""
        return f"Connecting to {other.ip}:{other.port} " in self.log()

    def completed(self):
        return "Download complete." in self.log()

    def stop(self):
        """SIGTERM: ctorrent announces event=stopped, then exits."""
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass


def check_all(instances):
    for i in instances:
        i.check()


# --------------------------------------------------------------------------
# What hayate saw
# --------------------------------------------------------------------------



def check_sources(tracker, instances):
    """Every announce came from one of the instances' own addresses, each
    address with a single peer_id: hayate saw three distinct peers."""
    seen = tracker.announces_by_source("http")
    ours = {i.ip for i in instances}
    strangers = sorted(set(seen) - ours)
    if strangers:
        raise Failed(f"announces from {strangers}, not from the instances' addresses {sorted(ours)}: "
                     "ctorrent -i did not bind the tracker connection")
    for i in instances:
        ids = {q.get("peer_id") for q in seen.get(i.ip, [])}
        if len(ids) != 1:
            raise Failed(f"{i.name} ({i.ip}) announced with peer ids {sorted(map(repr, ids))}")
        ports = {q.get("port") for q in seen[i.ip]}
        if ports != {str(i.port)}:
            raise Failed(f"{i.name} announced ports {sorted(ports)}, listens on {i.port}")
    return seen



def wait_logged(tracker, instances, event, everyone):
    """Waits until hayate's log shows an announce with `event` from each of
    `instances` (the log is read a moment after /stats counts it)."""
    def missing():
        seen = tracker.announces_by_source("http")
        return [f"{i.name}: {announce_events(seen, i.ip)}" for i in instances if event not in announce_events(seen, i.ip)]
    try:
        wait_until(f"event={event} from every instance in hayate's log",
                   lambda: not missing(), 5, proc_check=lambda: check_all(everyone))
    except Failed as e:
        raise Failed(f"{e}; events so far: {'; '.join(missing())}")



# --------------------------------------------------------------------------
# The case
# --------------------------------------------------------------------------


def wait_listening(instance, everyone):
    wait_until(f"{instance.name} to listen on {instance.ip}:{instance.port}", instance.listening, 10,
               proc_check=lambda: check_all(everyone))


def download(case, proto, family, version):
    tracker = case.tracker(TRACKER_FLAGS)
    url = tracker.url(proto, family)
    payload = case.path("payload", "payload.bin")
    make_payload(payload, PAYLOAD_BYTES, PAYLOAD_SEED)
    torrent = case.path("payload.torrent")
    info_hash = make_torrent(payload, torrent, url)
    case.note(f"torrent {info_hash} of {PAYLOAD_BYTES} bytes, only tracker {url}")

    # The seeder first, and the leechers once hayate has its announce, so
    # their first replies carry it (a leecher that announced first would
    # hear of the seeder only on its next announce, 15 s or more later).
    seeder = Instance(case, "seeder", SEEDER_IP, torrent, seed_from=payload)
    everyone = [seeder]
    wait_listening(seeder, everyone)
    wait_until(f"the seeder's first announce from {seeder.ip} to reach hayate",
               lambda: seeder.ip in tracker.announces_by_source("http"), 10, proc_check=lambda: check_all(everyone))
    leechers = [Instance(case, f"leecher{n}", ip, torrent) for n, ip in enumerate(LEECHER_IPS, 1)]
    everyone += leechers
    for i in leechers:
        wait_listening(i, everyone)

    # Download: each leecher must be handed the seeder and finish.
    for i in leechers:
        wait_until(f"{i.name} ({i.ip}) to try the seeder {seeder.ip}:{seeder.port} "
                   "(it knows it only from hayate's reply)",
                   lambda: i.tried(seeder), DOWNLOAD_TIMEOUT, proc_check=lambda: check_all(everyone))
    for i in leechers:
        wait_until(f"{i.name} ({i.ip}) to finish downloading", i.completed, DOWNLOAD_TIMEOUT,
                   proc_check=lambda: check_all(everyone))
        if not same_file(payload, i.file):
            raise Failed(f"{i.name}: {i.file} differs from the seeder's payload")
    case.note("both leechers' files are byte-identical to the seeder's")

    # ctorrent announces completed: everyone is a seeder now.
    tracker.wait_swarm(family, (3, 0), "the completed announces", DOWNLOAD_TIMEOUT, lambda: check_all(everyone))
    wait_logged(tracker, leechers, "completed", everyone)
    seen = check_sources(tracker, everyone)
    case.note(f"hayate counts 3 seeders; announces per source: "
              f"{ {ip: len(qs) for ip, qs in sorted(seen.items())} }")

    # Stop: SIGTERM, event=stopped, exit 0; nobody left in the swarm.
    for i in everyone:
        i.stop()
    for i in everyone:
        try:
            status = i.proc.wait(STOP_TIMEOUT)
        except Failed as e:
            raise Failed(f"{e} after SIGTERM (it should announce stopped and exit)")
        if status != 0:
            raise Failed(f"{i.name} exited with status {status} after SIGTERM")
    wait_logged(tracker, everyone, "stopped", [])
    seen = check_sources(tracker, everyone)
    for i in everyone:
        ev = announce_events(seen, i.ip)
        if ev[0] != "started" or ev[-1] != "stopped":
            raise Failed(f"{i.name} announced events {ev}: expected started first, stopped last")
    if tracker.swarm(family) != (0, 0):
        raise Failed(f"after every stopped announce hayate still counts {tracker.swarm(family)}")
    case.note("every instance announced stopped and exited 0; hayate counts no peer")

    n = tracker.wait_counters(proto, family)
    case.note(f"hayate counted {n} {proto}/{family} announces, none elsewhere")
    case.capture(tracker, CLIENT, proto, family, version)


def main():
    suite = Suite(CLIENT)
    try:
        version = client_version()
    except Failed as e:
        print(f"{CLIENT}: {e}", flush=True)
        suite.failed += 1
        return suite.finish()
    print(f"{CLIENT}: {version}", flush=True)
    suite.case("http ipv4", lambda case: download(case, "http", "ipv4", version))
    suite.skip("http ipv6", "ctorrent is IPv4-only (\"error, invalid tracker url format!\" for [::1])")
    suite.skip("udp ipv4", "ctorrent has no UDP tracker support")
    suite.skip("udp ipv6", "ctorrent has no UDP tracker support")
    return suite.finish()


if __name__ == "__main__":
    sys.exit(main())
