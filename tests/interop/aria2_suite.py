#!/usr/bin/env python3
"""A real client against hayate: aria2 1.36 (Debian's `aria2`, the
`aria2c` program) over HTTP and UDP, IPv4 and IPv6 where aria2 can.

    aria2_suite.py [PATH-TO-HAYATE]      (or HAYATE_BIN=...)

Per case one hayate on ephemeral ports (harness.py), a 1 MiB payload, a
.torrent whose only tracker is the case's URL, and three aria2c processes
that can find each other only through hayate: PEX, LPD and DHT peer
discovery are off (see the UDP facts below for DHT), each listens on its
own free port, bound to the loopback address of the case's family.

1. The seeder starts with the payload in its directory (--check-integrity
   hashes it, then it seeds) and announces started; the case waits until
   hayate counts it as a seeder, so each leecher's first reply names it.
2. The two leechers start in empty directories, get the seeder from hayate
   and download. Pass: both files byte-identical to the payload, and hayate
   counting 3 seeders and 0 leechers (each leecher announced completed).
3. SIGINT to every aria2c: each announces stopped and exits 0; hayate must
   then count nobody, every client's announces must read started first,
   stopped last and (leechers only) completed in between, and
   hayate_announces_total must have risen for the case's protocol and
   family by exactly the announces logged, staying 0 for the other three.

aria2 facts this relies on, each checked against aria2 1.36.0 (its source
and trial runs), not taken on trust:

- UDP trackers need the IPv4 DHT socket. aria2's UDP tracker client is
  created with, and sends through, the IPv4 DHT socket (--enable-dht; the
  announces come from --dht-listen-port). With DHT off a udp:// tracker
  fails at once ("udp is not supported yet") and hayate never sees a
  datagram.
- So UDP needs DHT on, yet DHT must not find peers. The UDP cases use a
  private torrent (BEP 27): aria2 still opens the DHT socket, and so uses
  the UDP tracker, but does no DHT lookup for a private torrent (nor PEX or
  LPD). With a public torrent and DHT on, the clients learn each other's
  DHT ports from the BitTorrent PORT message and talk DHT once connected
  (seen in a trial). A routing table file of its own in the client's
  directory (--dht-file-path, not there yet) and no entry point keep the
  DHT away from the world; the missing file costs a harmless ERROR line at
  start, "Exception caught while loading DHT routing table".
- No UDP tracker over IPv6 in 1.36, even with --enable-dht6: the requests
  still go to the IPv4 DHT socket, which cannot reach [::1] ("UDPT fail
  CONNECT to ::1:PORT" in aria2's log) and nothing reaches hayate. That case
  is skipped. HTTP over IPv6 works (`peers6` in the reply).
- The HTTP `key` is 8 raw binary bytes, percent-encoded: the last 8 bytes
  of the peer_id, which is "A2-1-36-0-" and 10 random bytes. Over UDP the
  key is a fresh random 32-bit number in every announce; aria2's UDP
  announces are 100 bytes, the 98 of BEP 15 and 2 zero bytes after them.
- Over HTTP aria2 re-announces every *min interval* of the reply, not every
  interval; over UDP (whose reply has no min interval) every interval.
  hayate is started with 5 s / 2 s so a leecher that missed the seeder
  still learns of it soon; the seeder-first order means none needs to.
- SIGTERM is aria2's emergency shutdown: no stopped announce. SIGINT is the
  graceful one: event=stopped to the tracker, then exit status 0 when every
  download was complete.
- Without --seed-time aria2 seeds until a share ratio of 1.0 (aria2c(1)),
  then exits; --seed-ratio=0.0 (no limit) with a long --seed-time keeps every
  client seeding until SIGINT. The .aria2 control file stays while seeding,
  so completion is judged by the file's bytes and hayate's counts.
- Boolean options take `--opt=true`: in `--opt true` the "true" is read
  as a URI to download.
- --interface binds the listening sockets (BitTorrent TCP, DHT UDP) to one
  address; aria2 then fails to listen on the other family and logs an
  ERROR for it. --disable-ipv6 avoids that in the IPv4 cases; nothing turns
  off IPv4, so the IPv6 cases show "IPv4 BitTorrent: failed to bind".

Private cases ("private http ipv4", "private http ipv6"): the same
three steps against hayate in private mode (harness.py), the seeder and
the two leechers three users of the site, each with a .torrent of the one
private info dict (registered by its info hash) announcing to its own
passkey URL, `http://HOST:PORT/<passkey>/announce`. After the graceful
stop hayate gets SIGTERM and must exit 0, and its SQLite database must
hold the credit (harness Tracker.check_credit: the seeder's user uploaded,
each leecher's user downloaded the payload, exactly what the clients
reported; Snatched = 2, two xbt_snatched rows, no active peer row). No
fixtures from private cases. No private udp case: aria2 1.36 puts no BEP
41 URL data in its UDP announces (the two bytes after the 98 are an empty
option list, seen in hayate's log), so the passkey of
udp://HOST:PORT/<passkey>/announce never reaches the tracker and hayate
rightly answers "Passkey not found".

Each aria2c writes an info-level log (aria2.log in its directory, kept
with the case's work directory on failure): when hayate refuses an
announce (a failure reason over HTTP, an error reply over UDP) the case
fails at once with the reason.

Exit 0 when every case passes; the last line is
`interop-aria2: N passed, M failed`.
"""

import os
import re
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.parse

from harness import Failed, Suite, free_port, make_payload, make_torrent, same_file, wait_until

PAYLOAD_BYTES = 1 << 20
PAYLOAD_SEED = 0xA12  # fixed: a failure is reproducible
LEECHERS = 2
# aria2 re-announces at the min interval over HTTP (see above).
TRACKER_FLAGS = ["--announce-interval", "5s", "--min-announce-interval", "2s",
                 "--announce-jitter", "0s"]
# Seconds per phase; together at most 60 s a case.
SEEDER_TIMEOUT = 10
DOWNLOAD_TIMEOUT = 20
COMPLETED_TIMEOUT = 10
STOP_TIMEOUT = 10
STOPPED_TIMEOUT = 5

UDP_EVENTS = {0: "none", 1: "completed", 2: "started", 3: "stopped"}
# What aria2's info-level log says when the tracker turns an announce down,
# or when the UDP tracker cannot be used at all.
REFUSAL = re.compile(
    r"Tracker returned failure reason: (?P<http>.*)"
    r"|UDPT received ERROR reply .*error_string=(?P<udp>.*)"
    r"|(?P<fail>UDPT fail \w+ to \S+|udp is not supported yet)"
)


def aria2_version():
    """The label of the installed aria2 for the fixtures, e.g. "aria2
    1.36.0 (Debian aria2 1.36.0-1)"; Failed if aria2c is missing."""
    try:
        out = subprocess.run(["aria2c", "--version"], capture_output=True, text=True,
                             timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired) as e:
        raise Failed(f"cannot run aria2c ({e}); apt-get install aria2")
    m = re.search(r"aria2 version (\S+)", out)
    if not m:
        raise Failed(f"cannot read aria2c --version: {out[:200]!r}")
    label = f"aria2 {m.group(1)}"
    try:
        deb = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "aria2"],
                             capture_output=True, text=True, timeout=10)
        if deb.returncode == 0 and deb.stdout:
            label += f" (Debian aria2 {deb.stdout})"
    except (OSError, subprocess.TimeoutExpired):
        pass
    return label


# --------------------------------------------------------------------------
# One aria2c
# --------------------------------------------------------------------------


class Aria2:
    """An aria2c process of the case: a seeder (its directory already holds
    the payload) or a leecher (an empty directory)."""

    def __init__(self, case, name, proto, family, torrent, seeder=False):
        self.name = name
        self.dir = os.path.dirname(case.path(name, "payload.bin"))
        self.file = os.path.join(self.dir, "payload.bin")
        self.log = os.path.join(self.dir, "aria2.log")
        self.port = free_port(family)
        self._seen = 0  # how far check() has read the log
        argv = aria2_argv(proto, family, self.dir, self.log, self.port, torrent, seeder)
        self.proc = case.start(name, argv)
        case.note(f"{name} listens on port {self.port}")

    def check(self):
        """Raises Failed if the process died or the tracker refused it."""
        self.proc.check_alive()
        try:
            with open(self.log, "rb") as f:
                f.seek(self._seen)
                chunk = f.read()
        except OSError:
            return
        chunk = chunk[: chunk.rfind(b"\n") + 1]  # whole lines only
        self._seen += len(chunk)
        text = chunk.decode(errors="replace")
        m = REFUSAL.search(text)
        if m:
            why = m.group("http") or m.group("udp") or m.group("fail")
            raise Failed(f"{self.name}: the announce failed: {why.strip()}")

    def interrupt(self):
        """SIGINT: aria2's graceful shutdown (announces stopped)."""
        self.proc.proc.send_signal(signal.SIGINT)


def aria2_argv(proto, family, workdir, log, port, torrent, seeder):
    loopback = "127.0.0.1" if family == "ipv4" else "::1"
    # Every option in the = form (booleans need it, see the docstring).
    argv = [
        "aria2c", "--no-conf",
        f"--dir={workdir}",
        f"--log={log}", "--log-level=info",
        "--console-log-level=notice", "--summary-interval=0",
        "--show-console-readout=false",
        f"--listen-port={port}",
        f"--interface={loopback}",
        # IPv4 cases: no IPv6 listening socket (it would fail to bind to
        # 127.0.0.1 anyway). IPv6 cases: IPv6 explicitly on.
        f"--disable-ipv6={'true' if family == 'ipv4' else 'false'}",
        "--enable-peer-exchange=false",
        "--bt-enable-lpd=false",
        # Keep seeding after the download until SIGINT.
        "--seed-ratio=0.0", "--seed-time=60",
        "--file-allocation=none",
    ]
    if seeder:
        # Hashes the file already there, then seeds it. (On a leecher it
        # would only log "Checksum error detected" for the missing file.)
        argv.append("--check-integrity=true")
    if proto == "udp":
        # The UDP tracker lives on the IPv4 DHT socket (see the docstring);
        # the torrent is private, so the DHT looks up no peers for it.
        dht_port = free_port("ipv4", socket.SOCK_DGRAM)
        dht_file = os.path.join(workdir, "dht.dat")
        argv += ["--enable-dht=true", f"--dht-listen-port={dht_port}",
                 f"--dht-file-path={dht_file}", "--enable-dht6=false"]
    else:
        argv += ["--enable-dht=false", "--enable-dht6=false"]
    return argv + [torrent]


# --------------------------------------------------------------------------
# What the tracker saw
# --------------------------------------------------------------------------


def parse_http(request):
    """(port, event) of a logged `GET /announce?...`, or None for others."""
    target = request.split(" ", 1)[-1]
    path, _, query = target.partition("?")
    if not path.endswith("/announce"):
        return None
    q = dict(urllib.parse.parse_qsl(query, encoding="latin-1"))
    return int(q.get("port", 0)), q.get("event", "none") or "none"


def parse_udp(hexdata):
    """(port, event) of a logged BEP 15 announce datagram, or None."""
    d = bytes.fromhex(hexdata)
    if len(d) < 98 or struct.unpack(">I", d[8:12])[0] != 1:
        return None
    event, port = struct.unpack(">I", d[80:84])[0], struct.unpack(">H", d[96:98])[0]
    return port, UDP_EVENTS.get(event, str(event))


def announces_by_port(tracker, proto):
    """{listen port: [events in order]} of every logged announce."""
    out = {}
    for p, _, request in tracker.requests():
        if p != proto:
            continue
        got = parse_http(request) if proto == "http" else parse_udp(request)
        if got:
            out.setdefault(got[0], []).append(got[1])
    return out


def events_complete(tracker, proto, seeder, leechers):
    """The logged announces by port once every client's read started first
    and stopped last, with completed between for a leecher (never for the
    seeder); None while not (yet) so."""
    seen = announces_by_port(tracker, proto)
    for c in [seeder, *leechers]:
        events = [e for e in seen.get(c.port, []) if e != "none"]
        want_completed = c is not seeder
        if not events or events[0] != "started" or events[-1] != "stopped":
            return None
        if ("completed" in events) != want_completed:
            return None
    return seen


def describe(seen, clients):
    return "; ".join(f"{c.name}: {seen.get(c.port, [])}" for c in clients)


def wait_swarm(case, tracker, family, want, after, timeout, watch=None):
    """Waits until hayate's (seeders, leechers) in `family` is `want`."""
    try:
        wait_until(f"hayate to count {want[0]} seeders, {want[1]} leechers in {family} "
                   f"after {after}", lambda: tracker.swarm(family) == want, timeout,
                   proc_check=watch)
    except Failed:
        case.note(f"hayate counts (seeders, leechers) = {tracker.swarm(family)} in {family}")
        raise


# --------------------------------------------------------------------------
# A case
# --------------------------------------------------------------------------


def run_case(case, proto, family, version, private=False):
    tracker = case.tracker(TRACKER_FLAGS, private=private)
    names = ["seeder"] + [f"leecher{i}" for i in range(1, LEECHERS + 1)]
    if private:
        # A user each: hayate never hands a peer one of its own user.
        for name in names:
            tracker.add_user(name)
        urls = {name: tracker.passkey_url(proto, family, name) for name in names}
    else:
        urls = {name: tracker.url(proto, family) for name in names}
    url = urls["seeder"]
    seed_dir = os.path.dirname(case.path("seeder", "payload.bin"))
    payload = os.path.join(seed_dir, "payload.bin")
    make_payload(payload, PAYLOAD_BYTES, PAYLOAD_SEED)
    torrent = case.path("payload.torrent")
    # udp: see the docstring (DHT on, but unused); a private tracker's
    # torrents are private.
    private_torrent = private or proto == "udp"
    info_hash = make_torrent(payload, torrent, url, private=private_torrent)
    case.note(f"torrent {info_hash} for {url}{' (private)' if private_torrent else ''}")
    torrents = {name: torrent for name in names}
    if private:
        # The same info dict (so info hash) announcing to each user's URL.
        for name in names[1:]:
            torrents[name] = case.path(f"{name}.torrent")
            if make_torrent(payload, torrents[name], urls[name], private=True) != info_hash:
                raise Failed(f"{name}'s .torrent has another info hash")
        tracker.add_torrent(info_hash)
        case.note(f"registered users {tracker.site.users} and torrent {info_hash}")

    clients = []

    def watch():
        case.check_alive()
        for c in clients:
            c.check()

    # 1. The seeder, registered before any leecher asks.
    seeder = Aria2(case, "seeder", proto, family, torrent, seeder=True)
    clients.append(seeder)
    wait_swarm(case, tracker, family, (1, 0), "the seeder's started announce",
               SEEDER_TIMEOUT, watch)

    # 2. The leechers, downloading from the seeder hayate hands them.
    leechers = [Aria2(case, name, proto, family, torrents[name]) for name in names[1:]]
    clients.extend(leechers)
    wait_until("the leechers' files to equal the seeder's payload",
               lambda: all(same_file(payload, c.file) for c in leechers),
               DOWNLOAD_TIMEOUT, proc_check=watch)
    case.note("both leechers' files are byte-identical to the payload")
    wait_swarm(case, tracker, family, (1 + LEECHERS, 0), "the leechers' completed announces",
               COMPLETED_TIMEOUT, watch)
    case.note(f"hayate counts {1 + LEECHERS} seeders, 0 leechers in {family}")

    # 3. Graceful stop: event=stopped, exit 0, nobody left.
    for c in clients:
        c.interrupt()
    deadline = time.monotonic() + STOP_TIMEOUT
    for c in clients:
        status = c.proc.wait(max(deadline - time.monotonic(), 0.1))
        if status != 0:
            raise Failed(f"{c.name} exited with status {status} after SIGINT (expected 0)")
    case.note("every aria2c exited 0 after SIGINT")
    wait_swarm(case, tracker, family, (0, 0), "the stopped announces", STOPPED_TIMEOUT)
    try:
        seen = wait_until("every client's started/completed/stopped announces in the log",
                          lambda: events_complete(tracker, proto, seeder, leechers),
                          STOPPED_TIMEOUT)
    except Failed as e:
        raise Failed(f"{e}: {describe(announces_by_port(tracker, proto), clients)}")
    case.note(f"announces: {describe(seen, clients)}")

    # Every announce came over this protocol and family; none elsewhere.
    logged = sum(len(v) for v in seen.values())
    n = tracker.check_counters(proto, family, logged)
    case.note(f"hayate counted {n} {proto}/{family} announces, none elsewhere")

    if private:
        # SIGTERM: the flusher commits the last announces, then the credit.
        tracker.shutdown()
        case.note("hayate exited 0 after SIGTERM")
        tracker.check_credit(PAYLOAD_BYTES, "seeder", names[1:], case.note)
        case.note("database: credit, snatches and peer rows as expected")
        return  # no fixtures: client_fixtures.rs replays against a public tracker
    case.capture(tracker, "aria2", proto, family, version)


def main():
    # SIGTERM unwinds like an exception, so every `finally` stops its processes.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    suite = Suite("aria2")
    try:
        version = aria2_version()
    except Failed as e:
        print(f"aria2: {e}")
        suite.failed += 1
        return suite.finish()
    print(f"aria2: {version}, hayate {suite.binary}", flush=True)
    for private in (False, True):
        for proto in ("http", "udp"):
            for family in ("ipv4", "ipv6"):
                label = f"{'private ' if private else ''}{proto} {family}"
                if (proto, family) == ("udp", "ipv6"):
                    suite.skip(label, "aria2 1.36 sends UDP tracker requests only through its IPv4 "
                                      "DHT socket, so it has no UDP tracker over IPv6")
                    continue
                if private and proto == "udp":
                    suite.skip(label, "aria2 1.36 sends no BEP 41 URL data, so its UDP announces "
                                      "carry no passkey (see the docstring)")
                    continue
                suite.case(label, lambda case, p=proto, f=family, x=private:
                           run_case(case, p, f, version, x))
    return suite.finish()


if __name__ == "__main__":
    sys.exit(main())
