#!/usr/bin/env python3
"""A real client against hayate: rtorrent 0.9.8 on libtorrent 0.13.8
(Debian's `rtorrent`), one seeder and two leechers that find each other
only through hayate.

    rtorrent_suite.py [PATH-TO-HAYATE]      (or HAYATE_BIN=...)

Cases "http ipv4" and "udp ipv4". The IPv6 cases are skipped:

- rtorrent 0.9.8 refuses an IPv6 bind address ("Tried to set a bind
  address that is not an af_inet address"), so three instances would all
  announce from ::1, and libtorrent keeps one peer per IP (below): each
  leecher would keep one of the [::1]:PORT peers hayate hands out. Tried
  without a bind address: over http://[::1] rtorrent announces, reads
  hayate's peers6 and the first leecher downloads from the seeder over
  IPv6, but the second never gets a byte.
- Over udp://[::1] libtorrent 0.13.8 reads the peers of an announce reply
  as 6-byte IPv4 entries, so the 18-byte IPv6 entries hayate sends (BEP
  15 over IPv6) come out as addresses like 0.0.0.1: no download at all.

Per case: a hayate of its own, a 1 MiB payload, a .torrent whose only
tracker is hayate's URL for the case, and three rtorrent processes, each
on its own loopback address (seeder 127.0.0.2, leechers 127.0.0.3 and
127.0.0.4) and driven over XML-RPC on a local SCGI socket. The seeder
starts first and the leechers only once hayate counts it, so each
leecher's first reply must carry it. The case passes when

- every announce reaches hayate from the instance's own address, with one
  peer id and the instance's listen port per address;
- every leecher's replies (as rtorrent logged them) hand out the seeder's
  address and port, and no reply hands an instance its own endpoint;
- every leecher completes with a file byte-identical to the seeder's,
  announces event=completed, and hayate then counts three seeders;
- after d.stop every instance has announced event=stopped, hayate counts
  no peer, and on SIGTERM every rtorrent exits 0;
- hayate's announce counter for the case's (proto, family) equals the
  announces in its log; the other three stayed 0.

rtorrent facts this relies on (checked, not assumed):

- `network.bind_address.set` binds the listening socket and every
  outgoing socket: peer connections, the HTTP tracker request (curl) and
  the UDP tracker socket, so hayate sees each instance's own address.
- libtorrent keeps one peer per IP: PeerList::insert_address drops a
  second port at a known address, PeerList::connected refuses a second
  connection from one. It does not drop its own address from a reply.
- `system.daemon.set = true` runs rtorrent without curses, in the
  foreground; without a terminal it needs nothing else.
- libtorrent 0.13.8 clamps the tracker's interval to at least 600 s (min
  interval to 300 s), so rtorrent does not re-announce during a test and
  the seeder has to be in the swarm before the leechers start.
- event=completed: by default (`pieces.hash.on_completion` on) rtorrent
  closes and re-opens a download to re-hash it when it completes; the
  completed event arrives while the tracker controller is disabled, is
  only queued ("Queueing completed event") and would go out with the next
  regular announce, 600 s later. A forced announce (d.tracker_announce)
  sends no event. So the test turns the re-hash off; rtorrent then sends
  event=completed at once.
- event=stopped: on SIGTERM rtorrent sends its stopped announces and
  exits without waiting. Over HTTP the request gets out; over UDP only the
  connect request is prepared and nothing reaches the tracker. So the test
  stops the download first (d.stop), waits for hayate to log every stopped
  announce, then sends SIGTERM.

Exit 0 when every case passes; the last line is
`interop-rtorrent: N passed, M failed`.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import xmlrpc.client

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

CLIENT = "rtorrent"
PAYLOAD_BYTES = 1 << 20
PAYLOAD_SEED = 20240602  # fixed, so a failure is reproducible
SEEDER_IP = "127.0.0.2"
LEECHER_IPS = ("127.0.0.3", "127.0.0.4")
START_TIMEOUT = 10  # s, for an instance to answer XML-RPC and announce
DOWNLOAD_TIMEOUT = 30  # s
STOP_TIMEOUT = 10  # s

# rtorrent's log line for a refused or broken tracker request (its log is
# buffered: the line may show up late; d.message has it at once).
TRACKER_TROUBLE = re.compile(r"failed to connect to tracker \(.*\)")


# --------------------------------------------------------------------------
# XML-RPC over SCGI (what network.scgi.open_local speaks)
# --------------------------------------------------------------------------


def scgi_call(sock_path, method, *params, timeout=5.0):
    """One XML-RPC call over rtorrent's local SCGI socket: a netstring of
    NUL-separated headers, then the XML body; the reply is a CGI response
    (headers, blank line, XML) ended by the server closing."""
    body = xmlrpc.client.dumps(params, method).encode()
    headers = {"CONTENT_LENGTH": str(len(body)), "SCGI": "1",
               "REQUEST_METHOD": "POST", "REQUEST_URI": "/RPC2"}
    head = b"".join(k.encode() + b"\0" + v.encode() + b"\0" for k, v in headers.items())
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(sock_path)
        s.sendall(b"%d:%s,%s" % (len(head), head, body))
        reply = b""
        while chunk := s.recv(65536):
            reply += chunk
    _, _, xml = reply.partition(b"\r\n\r\n")
    return xmlrpc.client.loads(xml)[0][0]


# --------------------------------------------------------------------------
# What rtorrent's tracker_debug log says the tracker replied
# --------------------------------------------------------------------------


def bdecode(data, i=0):
    """(value, next index) of the bencoded value at data[i]."""
    c = data[i:i + 1]
    if c == b"i":
        end = data.index(b"e", i)
        return int(data[i + 1:end]), end + 1
    if c in (b"l", b"d"):
        i, items = i + 1, []
        while data[i:i + 1] != b"e":
            v, i = bdecode(data, i)
            items.append(v)
        if c == b"l":
            return items, i + 1
        return dict(zip(items[0::2], items[1::2])), i + 1
    colon = data.index(b":", i)
    n = int(data[i:colon])
    return data[colon + 1:colon + 1 + n], colon + 1 + n


def compact_peers(blob):
    """[(ip, port)] of a compact IPv4 peer list (BEP 23)."""
    return [(socket.inet_ntoa(blob[k:k + 4]), int.from_bytes(blob[k + 4:k + 6], "big"))
            for k in range(0, len(blob) - len(blob) % 6, 6)]


DUMP = re.compile(rb"(Tracker HTTP reply\.|received reply)\n---DUMP---\n(.*?)\n---END---\n", re.S)


def handed_out(dump_file):
    """Every (ip, port) the tracker's announce replies gave this instance,
    read from the raw replies rtorrent dumps at tracker_debug."""
    try:
        with open(dump_file, "rb") as f:
            data = f.read()
    except OSError:
        return set()
    peers = set()
    for kind, raw in DUMP.findall(data):
        if kind.startswith(b"Tracker HTTP"):
            try:
                reply, _ = bdecode(raw)
            except (ValueError, IndexError):
                continue
            if isinstance(reply, dict) and isinstance(reply.get(b"peers"), bytes):
                peers.update(compact_peers(reply[b"peers"]))
        elif len(raw) >= 20 and int.from_bytes(raw[0:4], "big") == 1:  # UDP announce reply
            peers.update(compact_peers(raw[20:]))
    return peers


# --------------------------------------------------------------------------
# One rtorrent instance
# --------------------------------------------------------------------------

RC = """\
# rtorrent for hayate's interop test: {name}
system.daemon.set = true
session.path.set = {dir}/session
directory.default.set = {dir}
# Listening socket, peer connections and tracker requests all from {ip}.
network.bind_address.set = {ip}
network.port_range.set = {port}-{port}
network.port_random.set = no
# The tracker is the only way to find peers (rtorrent has no LSD).
dht.mode.set = disable
protocol.pex.set = no
trackers.use_udp.set = yes
# Else event=completed is only queued, for an announce 600 s later.
pieces.hash.on_completion.set = no
network.scgi.open_local = {dir}/rpc.sock
# Events to the process log the harness shows; raw tracker replies to a file.
log.open_file = "main", "/dev/stdout"
log.add_output = "info", "main"
log.add_output = "tracker_info", "main"
log.open_file = "dump", "{dir}/tracker-dump.log"
log.add_output = "tracker_debug", "dump"
load.start_verbose = "{torrent}"
"""


class Instance:
    """An rtorrent process on its own loopback address, driven over XML-RPC."""

    def __init__(self, case, name, ip, torrent, seed_from=None):
        self.name = name
        self.ip = ip
        self.port = free_port()
        self.dir = os.path.dirname(os.path.dirname(case.path(name, "session", "x")))  # makes session/
        self.file = os.path.join(self.dir, os.path.basename(seed_from or "payload.bin"))
        self.sock = os.path.join(self.dir, "rpc.sock")
        self.dump = os.path.join(self.dir, "tracker-dump.log")
        if seed_from is not None:
            shutil.copyfile(seed_from, self.file)  # a copy: the original stays the reference
        rc = os.path.join(self.dir, "rtorrent.rc")
        with open(rc, "w") as f:
            f.write(RC.format(name=name, dir=self.dir, ip=ip, port=self.port, torrent=torrent))
        # -n: no ~/.rtorrent.rc; everything comes from this instance's rc.
        self.proc = case.start(name, ["rtorrent", "-n", "-o", f"import={rc}"], cwd=self.dir)
        self.hash = None

    def call(self, method, *params):
        try:
            return scgi_call(self.sock, method, *params)
        except (OSError, xmlrpc.client.Error, ValueError) as e:
            raise Failed(f"{self.name}: XML-RPC {method} failed: {e}")

    def ready(self):
        """The info hash once rtorrent answers XML-RPC and has the torrent."""
        if not os.path.exists(self.sock):
            return None
        hashes = self.call("download_list", "")
        if hashes:
            self.hash = hashes[0]
        return self.hash

    def complete(self):
        return self.call("d.complete", self.hash) == 1

    def check(self):
        """Fails if the process died or a tracker request failed: rtorrent
        puts the tracker's complaint in the download's message."""
        self.proc.check_alive()
        if self.hash:
            message = self.call("d.message", self.hash)
            if message:
                raise Failed(f"{self.name} ({self.ip}): {message}")
        try:
            with open(self.proc.logfile, errors="replace") as f:
                m = TRACKER_TROUBLE.search(f.read())
        except OSError:
            m = None
        if m:
            raise Failed(f"{self.name} ({self.ip}): tracker trouble: {m.group(0).strip()}")


def check_all(instances):
    for i in instances:
        i.check()


def client_version(instance):
    """'rtorrent 0.9.8 on libtorrent 0.13.8 (Debian libtorrent21
    0.13.8-2+b1, rtorrent 0.9.8-1)': versions from the running client,
    packages from dpkg."""
    client = instance.call("system.client_version")
    library = instance.call("system.library_version")
    try:
        debs = subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${Version}, ", "rtorrent", "libtorrent21"],
                              capture_output=True, text=True, timeout=10).stdout.strip(", ")
    except (OSError, subprocess.TimeoutExpired):
        debs = "unknown"
    return f"rtorrent {client} on libtorrent {library} (Debian {debs})"


# --------------------------------------------------------------------------
# What hayate saw
# --------------------------------------------------------------------------




def check_sources(tracker, proto, instances):
    """Every announce came from an instance's own address, with one peer id
    and that instance's listen port per address."""
    seen = tracker.announces_by_source(proto)
    ours = {i.ip for i in instances}
    strangers = sorted(set(seen) - ours)
    if strangers:
        raise Failed(f"announces from {strangers}, not from the instances' addresses {sorted(ours)}: "
                     "network.bind_address did not bind the tracker connection")
    for i in instances:
        mine = seen.get(i.ip, [])
        if not mine:
            raise Failed(f"no {proto} announce from {i.name} ({i.ip}) reached hayate")
        ids = {q.get("peer_id") for q in mine}
        if len(ids) != 1:
            raise Failed(f"{i.name} ({i.ip}) announced with peer ids {sorted(map(repr, ids))}")
        ports = {q.get("port") for q in mine}
        if ports != {str(i.port)}:
            raise Failed(f"{i.name} announced ports {sorted(ports)}, listens on {i.port}")
    return seen



def wait_logged(tracker, proto, instances, event, everyone):
    """Waits until hayate's log shows an announce with `event` from each of
    `instances` (the log is read a moment after /stats counts it)."""
    def missing():
        seen = tracker.announces_by_source(proto)
        return [f"{i.name}: {announce_events(seen, i.ip)}" for i in instances if event not in announce_events(seen, i.ip)]
    try:
        wait_until(f"event={event} from every instance in hayate's log",
                   lambda: not missing(), STOP_TIMEOUT, interval=0.2, proc_check=lambda: check_all(everyone))
    except Failed as e:
        raise Failed(f"{e}; events so far: {'; '.join(missing())}")


def check_handed_out(seeder, instances):
    """Each leecher was handed the seeder's endpoint; nobody its own."""
    for i in instances:
        got = handed_out(i.dump)
        if (i.ip, i.port) in got:
            raise Failed(f"hayate handed {i.name} its own endpoint {i.ip}:{i.port}")
        if i is not seeder and (seeder.ip, seeder.port) not in got:
            raise Failed(f"{i.name}'s tracker replies never held the seeder {seeder.ip}:{seeder.port} "
                         f"(they held {sorted(got)})")



# --------------------------------------------------------------------------
# The case
# --------------------------------------------------------------------------


def start(instance, everyone):
    wait_until(f"{instance.name} ({instance.ip}) to answer XML-RPC with its torrent",
               instance.ready, START_TIMEOUT, proc_check=lambda: check_all(everyone))


def download(case, proto, family, versions):
    tracker = case.tracker()
    url = tracker.url(proto, family)
    payload = case.path("payload", "payload.bin")
    make_payload(payload, PAYLOAD_BYTES, PAYLOAD_SEED)
    torrent = case.path("payload.torrent")
    info_hash = make_torrent(payload, torrent, url)
    case.note(f"torrent {info_hash} of {PAYLOAD_BYTES} bytes, only tracker {url}")

    # The seeder first: rtorrent will not re-announce within the test, so
    # the leechers' first replies must already carry it.
    seeder = Instance(case, "seeder", SEEDER_IP, torrent, seed_from=payload)
    everyone = [seeder]
    start(seeder, everyone)
    if not versions:
        versions.append(client_version(seeder))
        print(f"{CLIENT}: {versions[0]}", flush=True)
    tracker.wait_swarm(family, (1, 0), "the seeder's started announce", START_TIMEOUT, lambda: check_all(everyone))

    leechers = [Instance(case, f"leecher{n}", ip, torrent) for n, ip in enumerate(LEECHER_IPS, 1)]
    everyone += leechers
    for i in leechers:
        start(i, everyone)
    for i in leechers:
        wait_until(f"{i.name} ({i.ip}) to complete the download", i.complete, DOWNLOAD_TIMEOUT,
                   interval=0.5, proc_check=lambda: check_all(everyone))
        if not same_file(payload, i.file):
            raise Failed(f"{i.name}: {i.file} differs from the seeder's payload")
    case.note("both leechers' files are byte-identical to the seeder's")

    tracker.wait_swarm(family, (3, 0), "the completed announces", DOWNLOAD_TIMEOUT, lambda: check_all(everyone))
    wait_logged(tracker, proto, leechers, "completed", everyone)
    seen = check_sources(tracker, proto, everyone)
    check_handed_out(seeder, everyone)
    case.note(f"hayate counts 3 seeders; {proto} announces per source: "
              f"{ {ip: announce_events(seen, ip) for ip in sorted(seen)} }")
    up = seeder.call("d.up.total", seeder.hash)
    case.note(f"the seeder uploaded {up} bytes")

    # Stop the downloads (event=stopped), wait for hayate, then quit.
    for i in everyone:
        i.call("d.stop", i.hash)
    wait_logged(tracker, proto, everyone, "stopped", everyone)
    tracker.wait_swarm(family, (0, 0), "the stopped announces", STOP_TIMEOUT, lambda: check_all(everyone))
    for i in everyone:
        os.killpg(i.proc.pid, signal.SIGTERM)
    for i in everyone:
        status = i.proc.wait(STOP_TIMEOUT)
        if status != 0:
            raise Failed(f"{i.name} exited with status {status} after SIGTERM")
    seen = check_sources(tracker, proto, everyone)
    for i in everyone:
        ev = announce_events(seen, i.ip)
        if ev[0] != "started" or ev[-1] != "stopped":
            raise Failed(f"{i.name} announced events {ev}: expected started first, stopped last")
    case.note("every instance announced stopped and exited 0; hayate counts no peer")

    n = tracker.wait_counters(proto, family)
    case.note(f"hayate counted {n} {proto}/{family} announces, none elsewhere")
    case.capture(tracker, CLIENT, proto, family, versions[0])


def main():
    suite = Suite(CLIENT)
    versions = []  # filled from the first seeder that answers XML-RPC
    for proto in ("http", "udp"):
        suite.case(f"{proto} ipv4", lambda case, p=proto: download(case, p, "ipv4", versions))
    no_bind = ("rtorrent 0.9.8 cannot bind an IPv6 address, so every instance would announce "
               "from ::1, and libtorrent keeps one peer per IP")
    suite.skip("http ipv6", no_bind)
    suite.skip("udp ipv6", no_bind + "; besides, libtorrent 0.13.8 parses a UDP reply's "
               "18-byte IPv6 peers as 6-byte IPv4 ones")
    return suite.finish()


if __name__ == "__main__":
    sys.exit(main())
