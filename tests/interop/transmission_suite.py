#!/usr/bin/env python3
"""A real client against hayate: Transmission 3.00 (Debian's
transmission-daemon) over HTTP (IPv4 and IPv6) and UDP (IPv4).

    transmission_suite.py [PATH-TO-HAYATE]      (or HAYATE_BIN=...)

Needs `apt-get install transmission-daemon` (the daemon is driven over its
JSON-RPC from here, so transmission-remote is not used) and a Python with
the libtorrent bindings for the seeder: this one, $HAYATE_INTEROP_PYTHON or
target/interop-venv/bin/python (`make target/interop-venv/.libtorrent-2.1.1`).

Per case (http ipv4, http ipv6, udp ipv4; udp ipv6 is skipped, see below)
one hayate on ephemeral ports (harness.py), a 1 MiB payload with a fixed
seed and a private v1 .torrent whose only tracker is that case's URL. Two
Transmission leechers and one seeder:

1. The leechers start, each a transmission-daemon in the foreground with
   its own config dir, download dir, RPC port and peer port, DHT, PEX, LPD,
   and port mapping (UPnP and NAT-PMP) off; they announce (started) and
   the tracker must count them as two leechers.
2. The seeder starts, a libtorrent session listening on the family's
   loopback address; the reply to its announce holds the two leechers and
   it dials them. Each leecher must end with a file byte-identical to the
   seeder's, and hayate must then count three seeders in the family
   (Transmission announces event=completed at once; if not, the test forces
   a re-announce, what `transmission-remote -t all --reannounce` does).
3. Graceful stop: the leechers' torrents are stopped over RPC, the seeder
   gets SIGTERM (it pauses, which announces event=stopped); hayate must
   count no peer left, then every process must exit 0 on SIGTERM.

hayate's /stats must show announces over the protocol and family under
test and none over the other three (no fallback). Fixtures (HAYATE_CAPTURE=1)
hold only Transmission's requests, not the libtorrent seeder's.

Why the seeder is libtorrent (checked, not assumed): Transmission never
dials a peer on 127.0.0.0/8 or ::1. libtransmission/net.c
tr_address_is_valid_for_peers() drops "martian" addresses (0/8, 127/8,
224/3, ::, ::1, ff00::/8, link-local, v4-mapped), tr_peerMgrAddPex() applies
it to every tracker peer, and no setting lifts it. With three Transmission
daemons on loopback (leechers first), every daemon logged "Got 2 peers from
tracker" on each 5-s announce and none ever connected. It does accept
incoming connections from loopback, so a seeder that dials works: each
leecher's RPC `peers` must show an incoming connection from the seeder's
address. The other way out, binding the daemons to a non-loopback address
of the machine, depends on what addresses a machine has (for IPv6 it needs
a global one, see below), so the dialing seeder is libtorrent.

Why there is no udp ipv6 case: Transmission 3.00 cannot use a UDP tracker
over IPv6 here, for three reasons of its own (each checked in a network
namespace that had a global IPv6 address and an /etc/hosts name for ::1):
- tr_urlParse() splits host and port at the first ':', so the host of
  udp://[::1]:PORT/announce is "[": a DNS lookup that fails, "Could not
  connect to tracker", nothing reaches hayate. (HTTP URLs go to curl,
  which parses [::1] fine.)
- With a host name for ::1 instead, it still needs its IPv6 UDP socket,
  which it opens only when the host has a global unicast IPv6 address
  (2000::/3 as the source toward 2001:1890:1112:1::20, tr_globalIPv6()),
  bound to that address; without one nothing is sent.
- With both, announces work, but it reads every UDP announce reply as
  6-byte IPv4 entries (BEP 15 has 18-byte ones over IPv6): a reply with two
  IPv6 peers gave "Got 6 peers from tracker", all garbage.

Other Transmission 3.00 facts the test relies on:
- It declares interest in a peer only on its rechoke pulse, every 10 s
  (peer-mgr.c rechokeDownloads), so a download starts up to 10 s after the
  seeder connects: most of a case's ~16 s.
- The bind-address-ipv4/ipv6 settings stay at their defaults: a
  non-default IPv4 bind address also becomes curl's CURLOPT_INTERFACE for
  every HTTP announce, and with 127.0.0.1 an http://[::1] announce fails
  ("Could not connect to tracker"). The peer port therefore listens on all
  interfaces.
- UDP tracker datagrams leave from the daemon's peer socket, so their
  source port is the peer port (used to pick Transmission's datagrams for
  the fixtures); HTTP announces carry peer_id=-TR3000-.
- SIGTERM to a transmission-daemon with a running torrent sent no
  event=stopped over HTTP at all, and over UDP the reply came after the
  announcer was gone ("Couldn't parse UDP tracker packet"). Stopping the
  torrent over RPC first (torrent-stop) announces event=stopped properly.
- Transmission follows the tracker's interval (5 s here) and announces
  event=completed as soon as the download finishes.
- The RPC wants the X-Transmission-Session-Id handshake: the first request
  gets 409 with the id in a header, every later one sends it back.

Private cases ("private http ipv4", "private http ipv6"): the same three
steps against hayate in private mode (harness.py): the seeder and the two
leechers are three users of the site, each .torrent (one info dict,
`private: 1`, registered by its info hash) announcing to its own user's
passkey URL, `http://HOST:PORT/<passkey>/announce`. hayate's rules (a
seeder gets leechers only, nobody a peer of its own user) still hand the
seeder both leechers. After the stop hayate gets SIGTERM and must exit 0,
and its SQLite database must hold the credit (harness
Tracker.check_credit): the seeder's user uploaded, each leecher's user
downloaded the payload (1x to 2x), exactly what the clients reported;
Snatched = 2 (so both leechers must have sent event=completed here), two
xbt_snatched rows, no active peer row. The libtorrent seeder runs with
`ssrf_mitigation` off (a passkey path to a loopback tracker is refused by
it, see libtorrent_suite.py). No fixtures from private cases. There is no
private udp case: Transmission 3.00's UDP announces are the 98 bytes of
BEP 15 with no BEP 41 URL data (seen in hayate's log: every datagram 98
bytes), so the passkey of udp://HOST:PORT/<passkey>/announce never reaches
the tracker and hayate rightly answers "Passkey not found".

Exit 0 when no case fails; the last line is
`interop-transmission: N passed, M failed`.
"""

import base64
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

from harness import (
    ROOT,
    Failed,
    Suite,
    free_port,
    host,
    hostport,
    make_payload,
    make_torrent,
    run,
    same_file,
    wait_until,
)

CASE_SECONDS = 60.0  # budget of one case, start to finish
PAYLOAD_BYTES = 1 << 20
PAYLOAD_SEED = 3000  # fixed: a failing payload can be made again
LEECHERS = 2
# Short intervals so the clients re-announce during the case (hayate's
# defaults are 30 min); no jitter, so the interval is what they get.
TRACKER_FLAGS = ["--announce-interval", "5s", "--min-announce-interval", "1s",
                 "--announce-jitter", "0s"]
PROTOS = ("http", "udp")


# --------------------------------------------------------------------------
# Seeder mode: a libtorrent session in its own process (run with a Python
# that has the bindings). Every alert goes to stdout, which the harness logs.
# SIGTERM pauses the torrent (event=stopped) and exits once that announce
# has its reply.
# --------------------------------------------------------------------------


def seeder_main(torrent, save, ip, port, ssrf=True):
    import libtorrent as lt

    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    cat = lt.alert.category_t
    ses = lt.session({
        "listen_interfaces": hostport(ip, port),
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        # Both leechers are on the same loopback address.
        "allow_multiple_connections_per_ip": True,
        # Off for a passkey URL on loopback: it allows only the path
        # /announce to a local tracker (libtorrent_suite.py's docstring).
        "ssrf_mitigation": ssrf,
        "alert_mask": cat.error_notification | cat.status_notification
        | cat.tracker_notification | cat.connect_notification | cat.peer_notification,
    }, 0)  # flags 0: no default plugins, so no ut_pex
    atp = lt.add_torrent_params()
    atp.ti = lt.torrent_info(torrent)
    atp.save_path = save
    handle = ses.add_torrent(atp)
    print(f"seeder: libtorrent {lt.__version__} on {hostport(ip, port)}", flush=True)

    stop_by = None  # deadline for the reply to event=stopped
    stop_announced = False
    while stop_by is None or time.monotonic() < stop_by:
        if stopping and stop_by is None:
            print("seeder: SIGTERM, pausing (event=stopped)", flush=True)
            handle.pause()
            stop_by = time.monotonic() + 5
        ses.wait_for_alert(200)
        for a in ses.pop_alerts():
            print(f"{time.monotonic():.3f} {type(a).__name__}: {a.message()}", flush=True)
            if isinstance(a, lt.tracker_announce_alert) and stop_by is not None:
                stop_announced = True
            elif isinstance(a, (lt.tracker_reply_alert, lt.tracker_error_alert)) and stop_announced:
                ok = isinstance(a, lt.tracker_reply_alert)
                print(f"seeder: stopped announce {'answered' if ok else 'failed'}", flush=True)
                return 0 if ok else 1
    print("seeder: no reply to event=stopped within 5 s", flush=True)
    return 1


def libtorrent_python():
    """A Python that imports libtorrent, or None: `make` runs the suites
    with the interop venv's Python; by hand it is usually system python3."""
    venv = os.path.join(ROOT, os.environ.get("CARGO_TARGET_DIR", "target"),
                        "interop-venv", "bin", "python")
    for py in (sys.executable, os.environ.get("HAYATE_INTEROP_PYTHON"), venv):
        if py and os.access(py, os.X_OK):
            r = subprocess.run([py, "-c", "import libtorrent"], capture_output=True)
            if r.returncode == 0:
                return py
    return None


# --------------------------------------------------------------------------
# transmission-daemon
# --------------------------------------------------------------------------


class Rpc:
    """Transmission's JSON-RPC on 127.0.0.1 (urllib), with the session-id
    handshake: a 409 reply carries the id to send from then on."""

    def __init__(self, port):
        self.url = f"http://127.0.0.1:{port}/transmission/rpc"
        self.session_id = ""

    def call(self, method, **arguments):
        body = json.dumps({"method": method, "arguments": arguments}).encode()
        for _ in range(3):
            req = urllib.request.Request(self.url, body, {
                "Content-Type": "application/json",
                "X-Transmission-Session-Id": self.session_id,
            })
            try:
                with urllib.request.urlopen(req, timeout=5) as r:
                    reply = json.load(r)
            except urllib.error.HTTPError as e:
                if e.code == 409:
                    self.session_id = e.headers.get("X-Transmission-Session-Id", "")
                    continue
                raise Failed(f"RPC {method} on {self.url}: HTTP {e.code}")
            if reply.get("result") != "success":
                raise Failed(f"RPC {method} on {self.url}: {reply.get('result')}")
            return reply.get("arguments", {})
        raise Failed(f"RPC {method} on {self.url}: no session id after 409")

    def ready(self):
        try:
            self.call("session-get")
            return True
        except (urllib.error.URLError, ConnectionError, OSError):
            return False


class Daemon:
    """One transmission-daemon in the foreground (-f), its settings.json
    written before it starts."""

    def __init__(self, case, name):
        self.name = name
        self.rpc_port = free_port()
        self.peer_port = free_port()
        self.config = case.path(name, "config", "settings.json")
        self.download = os.path.dirname(case.path(name, "download", "x"))
        os.makedirs(self.download, exist_ok=True)
        settings = {
            "dht-enabled": False,
            "pex-enabled": False,
            "lpd-enabled": False,
            "port-forwarding-enabled": False,  # UPnP and NAT-PMP
            "peer-port": self.peer_port,
            "peer-port-random-on-start": False,
            "download-dir": self.download,
            "incomplete-dir-enabled": False,
            "watch-dir-enabled": False,
            "rpc-enabled": True,
            "rpc-bind-address": "127.0.0.1",
            "rpc-port": self.rpc_port,
            "rpc-authentication-required": False,
            "rpc-whitelist-enabled": True,
            "rpc-whitelist": "127.0.0.1",
            "ratio-limit-enabled": False,
            "idle-seeding-limit-enabled": False,
            "message-level": 3,  # debug: "Got N peers from tracker" and such
            # bind-address-ipv4/ipv6 stay at their defaults (see the docstring).
        }
        with open(self.config, "w") as f:
            json.dump(settings, f, indent=1)
        self.proc = case.start(name, ["transmission-daemon", "-f", "-g", os.path.dirname(self.config)])
        self.rpc = Rpc(self.rpc_port)
        wait_until(f"{name}'s RPC on 127.0.0.1:{self.rpc_port}", self.rpc.ready, 10,
                   proc_check=self.proc.check_alive)
        case.note(f"{name}: RPC port {self.rpc_port}, peer port {self.peer_port}")

    def add(self, torrent, info_hash):
        with open(torrent, "rb") as f:
            metainfo = base64.b64encode(f.read()).decode()
        added = self.rpc.call("torrent-add", metainfo=metainfo, paused=False,
                              **{"download-dir": self.download})
        got = (added.get("torrent-added") or added.get("torrent-duplicate") or {}).get("hashString")
        if got != info_hash:
            raise Failed(f"{self.name}: torrent-add gave info hash {got}, expected {info_hash}")

    def torrent(self):
        """The state of the only torrent (RPC torrent-get)."""
        fields = ["percentDone", "leftUntilDone", "status", "error", "errorString",
                  "peers", "peersFrom", "trackerStats"]
        torrents = self.rpc.call("torrent-get", fields=fields)["torrents"]
        if len(torrents) != 1:
            raise Failed(f"{self.name} has {len(torrents)} torrents, expected 1")
        return torrents[0]

    def check_tracker(self, t):
        """Fails at once when an announce went wrong, with Transmission's words."""
        for ts in t["trackerStats"]:
            if ts["hasAnnounced"] and not ts["lastAnnounceSucceeded"]:
                raise Failed(f"{self.name}: announce to {ts['announce']} failed: "
                             f"{ts['lastAnnounceResult']!r}")
        if t["error"]:
            raise Failed(f"{self.name}: torrent error {t['error']}: {t['errorString']!r}")

    def stop_and_exit(self):
        """SIGTERM (harness Proc.stop); the daemon must exit 0."""
        self.proc.stop()
        if self.proc.proc.returncode != 0:
            raise Failed(f"{self.name} exited with status {self.proc.proc.returncode} after SIGTERM")


def transmission_version():
    """'Transmission 3.00 (Debian transmission-daemon 3.00-2.1+deb12u1)'."""
    # It prints its version on stderr.
    out = run(["sh", "-c", "transmission-daemon --version 2>&1"]).strip() or "?"
    version = out.split()[1] if len(out.split()) > 1 else out
    try:
        deb = run(["dpkg-query", "-W", "-f", "${Version}", "transmission-daemon"]).strip()
        return f"Transmission {version} (Debian transmission-daemon {deb})"
    except Failed:
        return f"Transmission {version}"


# --------------------------------------------------------------------------
# Checks against the tracker
# --------------------------------------------------------------------------


class TransmissionRequests:
    """The tracker's request log narrowed to Transmission's requests, for
    Case.capture (it only calls requests()): HTTP announces with a -TR
    peer_id and scrapes (the libtorrent seeder never scrapes), UDP
    datagrams from a daemon's peer port."""

    def __init__(self, tracker, peer_ports):
        self.tracker = tracker
        self.ports = {str(p) for p in peer_ports}

    def requests(self):
        out = []
        for proto, source, req in self.tracker.requests():
            if proto == "http":
                path = req.split(" ")[-1]
                keep = "peer_id=-TR" in path or path.startswith("/scrape")
            else:
                keep = source.rsplit(":", 1)[-1] in self.ports
            if keep:
                out.append((proto, source, req))
        return out


def events_sent(requests, proto):
    """Announce events in requests(): a list of 'started', 'completed',
    'stopped' or 'none'. UDP (BEP 15): action 1 at offset 8, event at 80."""
    names = {0: "none", 1: "completed", 2: "started", 3: "stopped"}
    out = []
    for p, _, req in requests:
        if p != proto:
            continue
        if proto == "http":
            if "/announce" in req:
                ev = [kv[6:] for kv in req.split("?", 1)[-1].split("&") if kv.startswith("event=")]
                out.append(ev[0] if ev else "none")
        else:
            data = bytes.fromhex(req)
            if len(data) >= 98 and int.from_bytes(data[8:12], "big") == 1:
                out.append(names.get(int.from_bytes(data[80:84], "big"), "?"))
    return out


def announce_counts(tracker):
    return {(p, f): tracker.announces(p, f) for p in PROTOS for f in ("ipv4", "ipv6")}


def wait_swarm(tracker, family, want, what, timeout, poll=None, proc_check=None):
    """Waits until hayate counts `want` (seeders, leechers) in `family`;
    `poll` runs each round too (it may raise). The failure names what the
    tracker counted last."""

    def reached():
        if poll is not None:
            poll()
        return tracker.swarm(family) == want

    try:
        wait_until(what, reached, timeout, proc_check=proc_check)
    except Failed as e:
        raise Failed(f"{e}: hayate counts (seeders, leechers) = {tracker.swarm(family)} "
                     f"in {family}, expected {want}")


# --------------------------------------------------------------------------
# One case
# --------------------------------------------------------------------------


def run_case(case, proto, family, lt_python, version, private=False):
    def left(cap):
        """A wait's timeout: `cap`, or less when the case's budget runs out."""
        return max(0.5, min(cap, CASE_SECONDS - (time.monotonic() - case.started)))

    tracker = case.tracker(TRACKER_FLAGS, private=private)
    names = ["seeder"] + [f"leech{i}" for i in range(1, LEECHERS + 1)]
    if private:
        # A user each: hayate never hands a peer one of its own user.
        for name in names:
            tracker.add_user(name)
        urls = {name: tracker.passkey_url(proto, family, name) for name in names}
    else:
        urls = {name: tracker.url(proto, family) for name in names}
    url = urls["leech1"]
    if any(announce_counts(tracker).values()):
        raise Failed(f"a fresh tracker already counts announces: {announce_counts(tracker)}")

    seed_dir = os.path.dirname(case.path("seed", "x"))
    payload = os.path.join(seed_dir, "payload.bin")
    make_payload(payload, PAYLOAD_BYTES, PAYLOAD_SEED)
    torrent = case.path("payload.torrent")
    # private: Transmission (and libtorrent) then use no DHT, PEX or LPD for
    # it, on top of the settings that turn them off.
    info_hash = make_torrent(payload, torrent, url, private=True)
    case.note(f"private v1 torrent {info_hash} of {PAYLOAD_BYTES} bytes for {url}")
    torrents = {name: torrent for name in names}
    if private:
        # The same info dict (so info hash) announcing to each user's URL.
        for name in names:
            torrents[name] = case.path(f"{name}.torrent")
            if make_torrent(payload, torrents[name], urls[name], private=True) != info_hash:
                raise Failed(f"{name}'s .torrent has another info hash")
        tracker.add_torrent(info_hash)
        case.note(f"registered users {tracker.site.users} and torrent {info_hash}")

    # 1. The leechers announce first.
    leechers = [Daemon(case, f"leech{i}") for i in range(1, LEECHERS + 1)]
    for d in leechers:
        d.add(torrents[d.name], info_hash)

    def leechers_ok():
        for d in leechers:
            d.check_tracker(d.torrent())

    wait_swarm(tracker, family, (0, LEECHERS), f"the leechers' announces to {url}",
               left(15), poll=leechers_ok, proc_check=case.check_alive)
    case.note(f"hayate counts {LEECHERS} leechers in {family}")

    # 2. The seeder: hayate hands it the leechers, it dials them.
    seeder_port = free_port(family)
    seeder = case.start("seeder", [lt_python, os.path.abspath(__file__), "--seeder",
                                   torrents["seeder"], seed_dir, host(family), seeder_port,
                                   "nossrf" if private and proto == "http" else "ssrf"])
    seen = {d.name: set() for d in leechers}  # peers each leecher had

    def downloaded():
        done = True
        for d in leechers:
            t = d.torrent()
            d.check_tracker(t)
            for p in t["peers"]:
                seen[d.name].add((p["address"], p["port"], p["isIncoming"], p["clientName"]))
            done = done and t["leftUntilDone"] == 0 and same_file(
                payload, os.path.join(d.download, "payload.bin"))
        return done

    try:
        wait_until("both leechers to download a payload identical to the seeder's",
                   downloaded, left(30), proc_check=case.check_alive)
    except Failed as e:
        states = {d.name: {k: d.torrent()[k] for k in ("percentDone", "peersFrom")} for d in leechers}
        raise Failed(f"{e}; leechers: {states}; peers seen: {seen}")
    case.note(f"leechers' payloads are byte-identical to the seeder's; peers seen: {seen}")
    for d in leechers:
        incoming = [p for p in seen[d.name] if p[0] == host(family) and p[2]]
        if not incoming:
            raise Failed(f"{d.name} downloaded without an incoming connection from the seeder "
                         f"at {host(family)}: peers seen {seen[d.name]}")
        if any(not p[2] for p in seen[d.name]):
            case.note(f"{d.name} dialed out: {[p for p in seen[d.name] if not p[2]]}")

    # Three seeders once the leechers' event=completed arrived.
    three_seeders = (LEECHERS + 1, 0)
    try:
        wait_swarm(tracker, family, three_seeders, "the leechers' event=completed", left(3))
    except Failed as e:
        case.note(f"{e}; forcing a re-announce")
        for d in leechers:
            d.rpc.call("torrent-reannounce")
        wait_swarm(tracker, family, three_seeders, "re-announces after torrent-reannounce",
                   left(10))
    case.note(f"hayate counts {LEECHERS + 1} seeders in {family}")

    # 3. Graceful stop: event=stopped from everyone, then every exit is 0.
    for d in leechers:
        d.rpc.call("torrent-stop")
    os.kill(seeder.pid, signal.SIGTERM)
    wait_swarm(tracker, family, (0, 0), "every client's event=stopped", left(10))
    case.note("hayate counts no peer after the stopped announces")
    status = seeder.wait(left(6))
    if status != 0:
        raise Failed(f"the seeder exited with status {status} (see its log)")
    for d in leechers:
        d.stop_and_exit()

    # No fallback: announces over this protocol and family only.
    counts = announce_counts(tracker)
    elsewhere = {f"{p}/{f}": n for (p, f), n in counts.items() if (p, f) != (proto, family)}
    case.note(f"announces: {proto}/{family} {counts[(proto, family)]}, elsewhere {elsewhere}")
    if counts[(proto, family)] == 0:
        raise Failed(f"hayate counted no {proto}/{family} announce")
    if any(elsewhere.values()):
        raise Failed(f"announces arrived over another protocol or family: {elsewhere}")

    mine = TransmissionRequests(tracker, [d.peer_port for d in leechers])
    sent = events_sent(mine.requests(), proto)
    case.note(f"Transmission's announce events: {sent}")
    # completed is not required (a re-announce with left=0 also makes a
    # seeder), started and stopped are: one of each per leecher.
    for ev in ("started", "stopped"):
        if sent.count(ev) != LEECHERS:
            raise Failed(f"Transmission sent {sent.count(ev)} event={ev} announces, "
                         f"expected {LEECHERS}: {sent}")
    if private:
        # SIGTERM: the flusher commits the last announces, then the credit
        # (Snatched = 2 needs both leechers' event=completed).
        tracker.shutdown()
        case.note("hayate exited 0 after SIGTERM")
        tracker.check_credit(PAYLOAD_BYTES, "seeder", names[1:], case.note)
        case.note("database: credit, snatches and peer rows as expected")
        return  # no fixtures: client_fixtures.rs replays against a public tracker
    case.capture(mine, "transmission", proto, family, version)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--seeder":
        torrent, save, ip, port = sys.argv[2:6]
        ssrf = sys.argv[6:7] != ["nossrf"]
        return seeder_main(torrent, save, ip, int(port), ssrf)
    # SIGTERM unwinds like an exception, so every `finally` stops its processes.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    suite = Suite("transmission")
    try:
        version = transmission_version()
    except Failed as e:
        print(f"transmission: no transmission-daemon ({e}); apt-get install transmission-daemon")
        suite.failed += 1
        return suite.finish()
    lt_python = libtorrent_python()
    if lt_python is None:
        print("transmission: no Python with the libtorrent bindings for the seeder; "
              "make target/interop-venv/.libtorrent-2.1.1 or set HAYATE_INTEROP_PYTHON")
        suite.failed += 1
        return suite.finish()
    print(f"transmission: {version}, seeder {lt_python}, hayate {suite.binary}", flush=True)
    for private in (False, True):
        for proto in PROTOS:
            for family in ("ipv4", "ipv6"):
                label = f"{'private ' if private else ''}{proto} {family}"
                if proto == "udp" and family == "ipv6":
                    suite.skip(label, "Transmission 3.00 cannot announce to udp://[::1] "
                                      "(its URL parser takes '[' for the host; see the docstring)")
                    continue
                if private and proto == "udp":
                    suite.skip(label, "Transmission 3.00 sends no BEP 41 URL data, so its UDP "
                                      "announces carry no passkey (see the docstring)")
                    continue
                suite.case(label, lambda case: run_case(case, proto, family, lt_python, version,
                                                        private))
    return suite.finish()


if __name__ == "__main__":
    sys.exit(main())
