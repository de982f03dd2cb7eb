#!/usr/bin/env python3
"""A real client against hayate: libtorrent 2.x (Python bindings, the
engine of qBittorrent and Deluge) over HTTP and UDP, IPv4 and IPv6.

    libtorrent_suite.py [PATH-TO-HAYATE]      (or HAYATE_BIN=...)

Per case (http/udp x ipv4/ipv6) one hayate binary on ephemeral ports
(harness.py), and one seeder and two leechers, each a libtorrent session in
its own process (libtorrent caches UDP connection IDs per process), with
DHT, LSD, UPnP, NAT-PMP and PEX off, listening on loopback only. Three
phases:

1. Discovery. Every session has an IP filter that blocks the loopback
   address for peers (not for trackers), so no peer connection can happen
   and nobody completes. Each session announces (started); once all have a
   reply, each re-announces. libtorrent posts a peer_blocked_alert for every
   endpoint the tracker handed out, so the test sees each reply's peers
   exactly: every session must have been given every other session's listen
   endpoint, and never its own.
2. Download. The filter is lifted and everyone re-announces: the leechers
   must download the payload from the seeder, byte-identical, and the
   tracker must then count every session as a seeder (event=completed).
3. Stop. Each session pauses (event=stopped; destroying a libtorrent 2.1
   session sends no stopped announce over UDP), gets a reply without peers
   and exits: the tracker must count no peer left in that family.

hayate's /stats must show every announce libtorrent sent arrived over the
protocol and family under test, none over the other three (no fallback).

Private cases (the same four, "private http ipv4" and so on): hayate in
private mode (harness.py), the three sessions three users of the site, each
announcing to its own passkey URL (`http://HOST:PORT/<passkey>/announce`;
over UDP `udp://HOST:PORT/<passkey>/announce`, whose path libtorrent sends
as BEP 41 URL data), the torrent private (`private: 1` in the info dict)
and registered by its info hash. The three phases hold as they are:
hayate's private rules hand a seeder leechers only and never a peer of the
same user, and in phase 1 every session still gets the two others (the
seeder both leechers, a leecher the seeder and the other leecher). Swarm
counts come from hayate_private_peers (which has no family; the announce
counters still must show this protocol and family only). After phase 3
hayate gets SIGTERM (its flusher commits, exit 0) and the SQLite database
must show the credit (harness Tracker.check_credit): the seeder's user
uploaded, each leecher's user downloaded the payload (1x to 2x), each
user's credit exactly what its session's announces reported, Snatched =
2, two xbt_snatched rows, no active peer row. No fixtures are captured
from private cases (tests/client_fixtures.rs replays every fixture against
a public tracker, and a fixture file per client, protocol and family is
the public case's).

Facts checked here: HTTP announces to a loopback tracker work with
`ssrf_mitigation` at its default (on): it only restricts a local
tracker's path to /announce (and scrapes; this suite does not scrape).
That rule refuses a passkey URL on loopback ("blocked by SSRF
mitigation", no request sent), so the private HTTP cases turn
`ssrf_mitigation` off: a site's tracker is not on a local address, where
the setting changes nothing. UDP announces are not subject to it (the
private UDP cases run with it on);
`allow_multiple_connections_per_ip` is needed because every peer is on the
same loopback address; 2.x makes hybrid v1+v2 torrents, announced once per
info hash, so the torrent is made v1-only.

Exit 0 when every case passes; the last line is
`interop-libtorrent: N passed, M failed`.
"""

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time

from harness import Failed, Suite, child_setup

SESSIONS = 3  # one seeder, the rest leechers
CASE_TIMEOUT = 60.0  # seconds for one case, start to finish
PAYLOAD_BYTES = 1 << 20
PIECE_BYTES = 16 << 10


# --------------------------------------------------------------------------
# Client mode: one libtorrent session, driven over stdin/stdout.
#
# Events out (one JSON object per line): listening, announce (one per
# request libtorrent sends), reply, blocked (an endpoint a reply handed out,
# refused by the IP filter), connect (an outgoing peer connection), finished,
# stopped (the reply to event=stopped), tracker_error, closed. Commands in,
# one word a line: reannounce, unblock, quit. `epoch` counts the re-announce
# commands so far, so the driver can tell which announce a reply answers.
# --------------------------------------------------------------------------


def client_main(argv):
    import libtorrent as lt

    opts = dict(zip(argv[0::2], argv[1::2]))
    loopback = opts["--loopback"]  # 127.0.0.1 or ::1
    listen = f"[{loopback}]:0" if ":" in loopback else f"{loopback}:0"
    log = open(opts["--log"], "a", buffering=1)
    out_lock = threading.Lock()

    def emit(**ev):
        line = json.dumps(ev)
        with out_lock:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
        log.write(f"{time.monotonic():.3f} EVENT {line}\n")

    cat = lt.alert.category_t
    settings = {
        "listen_interfaces": listen,
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        # Every peer is on the same loopback address.
        "allow_multiple_connections_per_ip": True,
        # The discovery filter is for peers; the tracker is on loopback too.
        "apply_ip_filter_to_trackers": False,
        # ssrf_mitigation stays at its default (on) in the public cases:
        # for a tracker on a local address it insists on the path
        # /announce, which refuses /<passkey>/announce (see the docstring).
        "ssrf_mitigation": opts.get("--ssrf", "1") == "1",
        "alert_mask": cat.error_notification
        | cat.status_notification
        | cat.tracker_notification
        | cat.ip_block_notification
        | cat.connect_notification
        | cat.peer_notification
        | cat.storage_notification
        | cat.torrent_log_notification,
    }
    # flags=0: no default plugins, so no ut_pex (and no ut_metadata or
    # smart_ban, which this test does not need).
    ses = lt.session(settings, 0)

    def set_blocked(blocked):
        f = lt.ip_filter()
        if blocked:
            f.add_rule(loopback, loopback, 1)
        ses.set_ip_filter(f)

    set_blocked(True)
    atp = lt.add_torrent_params()
    atp.ti = lt.torrent_info(opts["--torrent"])
    atp.save_path = opts["--save"]
    handle = ses.add_torrent(atp)

    commands = queue.Queue()

    def read_commands():
        for line in sys.stdin:
            commands.put(line.strip())
        commands.put("quit")  # driver went away

    threading.Thread(target=read_commands, daemon=True).start()

    reasons = {int(v): k for k, v in lt.reason_t.names.items()}
    events = {int(v): k for k, v in lt.event_t.names.items()}
    reannounce = lt.reannounce_flags_t.ignore_min_interval
    epoch = 0
    quit_by = None  # set by quit: the deadline for the stopped announce
    stop_sent = False
    while quit_by is None or time.monotonic() < quit_by:
        try:
            cmd = commands.get_nowait()
        except queue.Empty:
            cmd = None
        if cmd and cmd != "quit":
            log.write(f"{time.monotonic():.3f} COMMAND {cmd} epoch {epoch + 1}\n")
        if cmd in ("reannounce", "unblock"):
            if cmd == "unblock":
                set_blocked(False)
            epoch += 1
            handle.force_reannounce(0, -1, reannounce)
        elif cmd == "quit" and quit_by is None:
            # Pausing sends event=stopped and posts its reply. (Destroying
            # the session without this sends no stopped announce over UDP.)
            log.write(f"{time.monotonic():.3f} COMMAND quit\n")
            quit_by = time.monotonic() + 10
            handle.pause()

        ses.wait_for_alert(100)
        for a in ses.pop_alerts():
            log.write(f"{time.monotonic():.3f} {type(a).__name__}: {a.message()}\n")
            if isinstance(a, lt.listen_succeeded_alert):
                if a.socket_type == lt.socket_type_t.tcp:
                    emit(ev="listening", ip=str(a.address), port=a.port)
            elif isinstance(a, lt.listen_failed_alert):
                emit(ev="listen_failed", message=a.message())
            elif isinstance(a, lt.tracker_announce_alert):
                event = events.get(int(a.event), str(a.event))
                stop_sent = stop_sent or event == "stopped"
                emit(ev="announce", epoch=epoch, event=event, url=a.url)
            elif isinstance(a, lt.tracker_reply_alert):
                emit(ev="stopped" if stop_sent else "reply", epoch=epoch, num_peers=a.num_peers)
                if stop_sent:
                    quit_by = 0  # done
            elif isinstance(a, lt.tracker_error_alert):
                emit(ev="tracker_error", epoch=epoch, message=a.message())
            elif isinstance(a, lt.peer_blocked_alert):
                ip, port = a.endpoint
                reason = reasons.get(int(a.reason), str(a.reason))
                emit(ev="blocked", epoch=epoch, ip=str(ip), port=port, reason=reason)
            elif isinstance(a, lt.peer_connect_alert):
                if "outgoing" in a.message():
                    ip, port = a.endpoint
                    emit(ev="connect", epoch=epoch, ip=str(ip), port=port)
            elif isinstance(a, lt.torrent_finished_alert):
                emit(ev="finished", epoch=epoch)

    handle = ses = None  # the session is destroyed here
    emit(ev="closed")
    log.close()
    return 0


# --------------------------------------------------------------------------
# Driver mode.
# --------------------------------------------------------------------------


class Client:
    """One libtorrent session in a child process (this script, client mode)."""

    def __init__(self, index, role, loopback, torrent, save, logfile, events, url, ssrf=True):
        self.index = index
        self.url = url  # the announce URL of its .torrent
        self.role = role
        self.name = f"{role}{index}"
        self.logfile = logfile
        self.port = None
        self.closed = False  # said goodbye: exiting now is expected
        stderr = open(logfile, "a")
        self.proc = subprocess.Popen(
            [
                sys.executable, os.path.abspath(__file__), "--client",
                "--loopback", loopback,
                "--torrent", torrent,
                "--save", save,
                "--log", logfile,
                "--ssrf", "1" if ssrf else "0",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            preexec_fn=child_setup,  # SIGKILL when the suite dies
        )
        stderr.close()
        threading.Thread(target=self._read, args=(events,), daemon=True).start()

    def _read(self, events):
        for line in self.proc.stdout:
            try:
                events.put((self, json.loads(line)))
            except ValueError:
                events.put((self, {"ev": "garbage", "line": line}))
        events.put((self, {"ev": "exited"}))

    def send(self, cmd):
        try:
            self.proc.stdin.write(cmd + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError):
            pass

    def log(self, tail=200):
        try:
            with open(self.logfile, errors="replace") as f:
                lines = f.read().splitlines()
        except OSError as e:
            return f"(no log: {e})"
        cut = len(lines) - tail
        head = [f"... ({cut} earlier lines)"] if cut > 0 else []
        return "\n".join(head + lines[-tail:])

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    # What the harness asks of a case's processes.
    @property
    def pid(self):
        return self.proc.pid

    def stop(self):
        self.kill()


def make_torrent(lt, workdir, announce_url, private=False):
    """A random payload in workdir/seed and a v1-only .torrent for it
    (`private`: `private: 1` in the info dict, BEP 27)."""
    seed_dir = os.path.join(workdir, "seed")
    os.makedirs(seed_dir)
    payload = os.urandom(PAYLOAD_BYTES)
    with open(os.path.join(seed_dir, "payload.bin"), "wb") as f:
        f.write(payload)
    # libtorrent 2.x makes hybrid v1+v2 torrents by default; a hybrid one is
    # announced twice (once per info-hash) and so forms two swarms on the
    # tracker. v1_only keeps one announce, one swarm.
    files = lt.list_files(os.path.join(seed_dir, "payload.bin"))
    ct = lt.create_torrent(files, PIECE_BYTES, lt.create_torrent.v1_only)
    ct.add_tracker(announce_url)
    if private:
        ct.set_priv(True)
    lt.set_piece_hashes(ct, seed_dir)
    torrent = os.path.join(workdir, "payload.torrent")
    with open(torrent, "wb") as f:
        f.write(lt.bencode(ct.generate()))
    hashes = lt.torrent_info(torrent).info_hashes()
    if not hashes.has_v1() or hashes.has_v2():
        raise Failed("the test torrent is not v1-only")
    if lt.torrent_info(torrent).priv() != private:
        raise Failed(f"the test torrent's private flag is not {private}")
    return torrent, payload


def retarget(lt, torrent, announce_url, out):
    """A copy of `torrent` announcing to `announce_url` (another user's
    passkey); the info dict, so the info hash, is unchanged."""
    with open(torrent, "rb") as f:
        meta = lt.bdecode(f.read())
    meta[b"announce"] = announce_url.encode()
    with open(out, "wb") as f:
        f.write(lt.bencode(meta))
    if str(lt.torrent_info(out).info_hashes().v1) != str(lt.torrent_info(torrent).info_hashes().v1):
        raise Failed(f"{out}: a new announce URL changed the info hash")
    return out


def run_case(lt, case, proto, family, private=False):
    """One case's three phases; raises Failed with what did not hold.
    `private`: hayate in private mode, a user (passkey URL) per session,
    and the credit checked in the database at the end."""
    started = case.started
    deadline = started + CASE_TIMEOUT
    loopback = "127.0.0.1" if family == "ipv4" else "::1"
    tracker = case.tracker(private=private)
    names = ["seeder" if i == 0 else f"leecher{i}" for i in range(SESSIONS)]
    if private:
        for name in names:
            tracker.add_user(name)
        urls = [tracker.passkey_url(proto, family, name) for name in names]
    else:
        urls = [tracker.url(proto, family)] * SESSIONS
    workdir = case.dir
    clients = []
    events = queue.Queue()
    note = case.note
    # What each client reported.
    blocked = {}  # client -> {(ip, port)} handed out in phase 1
    replies = {}  # client -> [reply events]
    announces = {}  # client -> [event names sent]
    connects = {}  # client -> {ports connected to}

    def wait_event(what, poll=None):
        """The next client event; fails on timeout, a dead client, an error.
        With `poll`, waits at most that long and returns None if nothing came."""
        left = max(deadline - time.monotonic(), 0)
        try:
            c, ev = events.get(timeout=left if poll is None else min(poll, left))
        except queue.Empty:
            if poll is not None and time.monotonic() < deadline:
                return None
            raise Failed(f"timed out after {CASE_TIMEOUT:.0f} s waiting for {what}")
        kind = ev["ev"]
        if kind == "closed":
            c.closed = True
        if kind in ("exited", "garbage", "listen_failed") and not (kind == "exited" and c.closed):
            raise Failed(f"{c.name}: unexpected {ev} while waiting for {what}")
        if kind == "tracker_error":
            raise Failed(f"{c.name}: tracker error: {ev['message']}")
        if kind == "listening":
            if ev["ip"] != loopback:
                raise Failed(f"{c.name} listens on {ev['ip']}, not {loopback}")
            c.port = ev["port"]
            note(f"{c.name} listening on port {c.port}")
        elif kind == "announce":
            if ev["url"] != c.url:
                raise Failed(f"{c.name} announced to {ev['url']}, not {c.url}")
            announces[c].append(ev["event"])
        elif kind in ("reply", "stopped"):
            replies[c].append(ev)
            note(f"{c.name} tracker reply ({ev['epoch']}{', stopped' if kind == 'stopped' else ''}): "
                 f"{ev['num_peers']} peers")
        elif kind == "blocked":
            if ev["reason"] != "ip_filter":
                raise Failed(f"{c.name}: peer {ev['ip']}:{ev['port']} blocked for {ev['reason']}, "
                             "not by the IP filter")
            if ev["epoch"] > 1:
                raise Failed(f"{c.name}: peer {ev['ip']}:{ev['port']} blocked after the filter was lifted")
            blocked[c].add((ev["ip"], ev["port"]))
        elif kind == "connect":
            connects[c].add(ev["port"])
        return c, ev

    def wait_until(cond, what):
        while not cond():
            wait_event(what)

    def replied(epoch):
        return lambda: all(any(r["epoch"] == epoch for r in replies[c]) for c in clients)

    before = tracker.stats()
    torrent, payload = make_torrent(lt, workdir, urls[0], private)
    note(f"v1 {'private ' if private else ''}torrent of {len(payload)} bytes for {urls[0]}")
    torrents = [torrent] * SESSIONS
    if private:
        info_hash = str(lt.torrent_info(torrent).info_hashes().v1)
        tracker.add_torrent(info_hash)
        note(f"registered users {tracker.site.users} and torrent {info_hash}")
        for i in range(1, SESSIONS):
            torrents[i] = retarget(lt, torrent, urls[i], os.path.join(workdir, f"{names[i]}.torrent"))
    for i in range(SESSIONS):
        role = "seeder" if i == 0 else "leecher"
        save = os.path.join(workdir, "seed" if i == 0 else f"leech{i}")
        os.makedirs(save, exist_ok=True)
        logfile = os.path.join(workdir, f"{role}{i}.log")
        # A passkey URL on loopback needs ssrf_mitigation off (docstring).
        c = Client(i, role, loopback, torrents[i], save, logfile, events, urls[i],
                   ssrf=not (private and proto == "http"))
        clients.append(c)
        case.procs.append(c)  # killed and its log printed by the harness
        blocked[c], replies[c], announces[c], connects[c] = set(), [], [], set()
    leechers = clients[1:]

    # Phase 1: discovery with peers blocked. Everyone announces
    # (started); once all have replies, everyone re-announces, so each
    # reply of that round was made with all sessions in the swarm.
    wait_until(lambda: all(c.port for c in clients) and replied(0)(),
               "listen ports and first tracker replies")
    for c in clients:
        c.send("reannounce")
    wait_until(replied(1), "the re-announce replies")
    endpoints = {c: (loopback, c.port) for c in clients}
    for c in clients:
        got = blocked[c]
        want = {endpoints[o] for o in clients if o is not c}
        note(f"{c.name} was handed ports {sorted(p for _, p in got)}")
        if endpoints[c] in got:
            raise Failed(f"{c.name} was handed its own endpoint {endpoints[c]}")
        if want - got:
            raise Failed(f"{c.name}: the tracker replies lacked {sorted(want - got)} "
                         f"(handed {sorted(got)}; the other sessions are {sorted(want)})")
        if got - want:
            raise Failed(f"{c.name}: handed endpoints of no session: {sorted(got - want)}")
        count = [r["num_peers"] for r in replies[c] if r["epoch"] == 1][-1]
        if count != len(want):
            raise Failed(f"{c.name}: the re-announce reply had {count} peers, expected {len(want)}")

    # Phase 2: lift the filter and re-announce; the leechers download.
    for c in clients:
        c.send("unblock")
    finished = set()
    while len(finished) < len(leechers):
        c, ev = wait_event("the leechers to finish downloading")
        if ev["ev"] == "finished" and c in leechers and ev["epoch"] >= 2:
            finished.add(c)
            note(f"{c.name} finished downloading")
    for c in leechers:
        with open(os.path.join(workdir, f"leech{c.index}", "payload.bin"), "rb") as f:
            if f.read() != payload:
                raise Failed(f"{c.name}: the downloaded payload differs from the seeder's")
    note("leechers' payloads are byte-identical to the seeder's")

    # Every leecher announced completed: all seeders, no leecher; and
    # every announce has its reply (so the next reply answers stopped).
    while True:
        seeders, leechers_n = tracker.swarm(family)
        settled = all(len(announces[c]) == len(replies[c]) for c in clients)
        if (seeders, leechers_n) == (SESSIONS, 0) and settled:
            break
        try:
            wait_event("completed announces", poll=0.2)
        except Failed:
            raise Failed(f"after the downloads the tracker counts {seeders} seeders and "
                         f"{leechers_n} leechers in {family} (expected {SESSIONS} and 0); "
                         f"announces sent {[len(announces[c]) for c in clients]}, "
                         f"replies {[len(replies[c]) for c in clients]}")
    note(f"tracker counts {SESSIONS} seeders, 0 leechers in {family}")
    for c in clients:
        if connects[c]:
            note(f"{c.name} connected out to ports {sorted(connects[c])}")

    # Phase 3: pause (event=stopped), then exit.
    for c in clients:
        c.send("quit")
    wait_until(lambda: all(any(r["ev"] == "stopped" for r in replies[c]) for c in clients),
               "the replies to event=stopped")
    for c in clients:
        stop = [r for r in replies[c] if r["ev"] == "stopped"][-1]
        if stop["num_peers"] != 0:
            raise Failed(f"{c.name}: the reply to event=stopped carried {stop['num_peers']} peers")
        try:
            c.proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            raise Failed(f"{c.name} did not exit after quit")
        if c.proc.returncode != 0:
            raise Failed(f"{c.name} exited with status {c.proc.returncode}")
    after = tracker.stats()
    if tracker.swarm(family) != (0, 0):
        raise Failed(f"after event=stopped the tracker still counts (seeders, leechers) = "
                     f"{tracker.swarm(family)} in {family}")
    note("tracker counts no peers after event=stopped")

    # Every announce libtorrent sent arrived over this protocol and
    # family and succeeded; none came over the other three.
    def delta(p, f):
        key = f'hayate_announces_total{{proto="{p}",family="{f}"}}'
        return int(after.get(key, 0) - before.get(key, 0))

    sent = {c.name: announces[c] for c in clients}
    total = sum(len(v) for v in sent.values())
    here = delta(proto, family)
    elsewhere = {
        f"{p}/{f}": delta(p, f)
        for p in ("http", "udp") for f in ("ipv4", "ipv6") if (p, f) != (proto, family)
    }
    note(f"libtorrent sent {total} announces: {sent}")
    note(f"stats: {proto}/{family} +{here}, elsewhere {elsewhere}")
    for c in clients:
        first, last = announces[c][0], announces[c][-1]
        if first != "started" or last != "stopped":
            raise Failed(f"{c.name} announced {announces[c]}: expected started first, stopped last")
    if here != total:
        raise Failed(f'hayate_announces_total{{proto="{proto}",family="{family}"}} rose by '
                     f"{here}, but libtorrent sent {total} announces")
    if any(elsewhere.values()):
        raise Failed(f"announces arrived over another protocol or family: {elsewhere}")
    if private:
        # SIGTERM: the flusher commits the last announces, then the credit.
        tracker.shutdown()
        note("hayate exited 0 after SIGTERM")
        tracker.check_credit(len(payload), names[0], names[1:], note)
        note("database: credit, snatches and peer rows as expected")
        return  # no fixtures: client_fixtures.rs replays against a public tracker
    case.capture(tracker, "libtorrent", proto, family,
                 f"libtorrent {lt.__version__} (PyPI libtorrent=={lt.__version__}, Python bindings)")


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        return client_main(sys.argv[2:])
    # SIGTERM unwinds like an exception, so every `finally` stops its processes.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    suite = Suite("libtorrent")
    try:
        import libtorrent as lt
    except ImportError as e:
        print(f"libtorrent: cannot import the libtorrent bindings ({e}); "
              "`pip install libtorrent` (make interop-libtorrent does)")
        suite.failed += 1
        return suite.finish()
    print(f"libtorrent: libtorrent {lt.__version__}, hayate {suite.binary}")
    for private in (False, True):
        for proto in ("http", "udp"):
            for family in ("ipv4", "ipv6"):
                label = f"{'private ' if private else ''}{proto} {family}"
                suite.case(label, lambda case: run_case(lt, case, proto, family, private))
    return suite.finish()


if __name__ == "__main__":
    sys.exit(main())
