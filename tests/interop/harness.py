"""Shared parts of the real-client suites (`make interop`).

Standard library only: the clients other than libtorrent are programs from
Debian's packages, so a suite needs nothing else to make its payload, its
.torrent, start hayate and check the result.

    from harness import Suite, Tracker, Proc, make_torrent, ...

A suite is a script: it makes a `Suite`, runs its cases (one per protocol
and address family), and exits with `suite.finish()`, whose last line is
`interop-NAME: N passed, M failed` (CI sums these lines).

Everything a case starts is a `Proc` registered with the case: stdout and
stderr go to a log file in the case's work directory, the process gets
SIGKILL if the suite dies (PR_SET_PDEATHSIG), every process is killed by
its process group when the case ends, and on failure every log is printed.

Fixtures: hayate at `--log-level debug` logs every request (`http ADDR:
GET TARGET` and `udp ADDR: HEX`); `Case.capture` picks a client's
requests out of that log and, when HAYATE_CAPTURE=1 (`make
interop-capture`), writes them to tests/fixtures/clients/, where
tests/client_fixtures.rs replays them against the tracker in `make test`.

Private mode (Gazelle/Ocelot): `case.tracker(flags, private=True)` starts
hayate with `--mode private`, two random 32-character secrets, a SQLite
database in the case's work directory and `--flush-interval 1s`; the
suite registers users and the torrent as the site would, over the control
API (`tracker.add_user(name)`, `tracker.add_torrent(info_hash)`), and
gives each client the announce URL of its own user
(`tracker.passkey_url(proto, family, name)`). A peer is never handed a
peer of its own user, so every client is a user of its own. At the end
`tracker.shutdown()` (SIGTERM: the flusher commits what it holds, exit 0)
and `tracker.check_credit(...)` read the database with sqlite3.

HAYATE_INTEROP_TRACKER_ARGS adds flags to every tracker a suite starts; a
flag named there replaces the harness's or the suite's own of that name
(hayate refuses a flag given twice: "--mode given more than once"). To
see a suite fail: "--allowlist /dev/null" refuses every public announce;
"--mode public" makes every private case fail (no control API);
"--database sqlite:/tmp/elsewhere.db" makes every private case's database
check fail (hayate writes elsewhere). HAYATE_INTEROP_KEEP=1 keeps the work
directories of passing cases too.
"""

import hashlib
import os
import queue
import random
import re
import shlex
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "clients")
FAMILIES = {"ipv4": "127.0.0.1", "ipv6": "::1"}


class Failed(Exception):
    """A check that did not hold; the message says what was expected."""


def _prctl():
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _prctl()  # resolved before any thread starts; the child only calls it


def child_setup():
    """In a child before exec: SIGKILL when the suite dies, however it dies
    (Linux PR_SET_PDEATHSIG), and a process group of its own so the whole
    tree (clients that fork) can be killed by one PID."""
    os.setpgid(0, 0)
    if _PRCTL is not None:
        _PRCTL(1, signal.SIGKILL)


def host(family):
    """The loopback address of a family: 127.0.0.1 or ::1."""
    return FAMILIES[family]


def hostport(ip, port):
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def free_port(family="ipv4", kind=socket.SOCK_STREAM):
    """A port nobody listens on right now (TCP and UDP both free)."""
    fam = socket.AF_INET6 if family == "ipv6" else socket.AF_INET
    for _ in range(50):
        with socket.socket(fam, kind) as s:
            s.bind((host(family), 0))
            port = s.getsockname()[1]
        other = socket.SOCK_DGRAM if kind == socket.SOCK_STREAM else socket.SOCK_STREAM
        try:
            for fam2, addr in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
                for k in (kind, other):
                    with socket.socket(fam2, k) as s:
                        s.bind((addr, port))
            return port
        except OSError:
            continue
    raise Failed("no free port found in 50 tries")


def wait_until(what, predicate, timeout, interval=0.2, proc_check=None):
    """Polls `predicate` until it returns a true value (returned) or the
    timeout passes (Failed naming `what`). `proc_check` runs each round and
    raises if a process the wait depends on died."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if proc_check is not None:
            proc_check()
        if time.monotonic() >= deadline:
            raise Failed(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


# --------------------------------------------------------------------------
# Payload and .torrent
# --------------------------------------------------------------------------


def bencode(value):
    if isinstance(value, bool):
        raise TypeError("bencode has no booleans")
    if isinstance(value, int):
        return b"i%de" % value
    if isinstance(value, str):
        value = value.encode()
    if isinstance(value, bytes):
        return b"%d:%s" % (len(value), value)
    if isinstance(value, list):
        return b"l" + b"".join(bencode(v) for v in value) + b"e"
    if isinstance(value, dict):
        items = sorted((k.encode() if isinstance(k, str) else k, v) for k, v in value.items())
        return b"d" + b"".join(bencode(k) + bencode(v) for k, v in items) + b"e"
    raise TypeError(f"cannot bencode {type(value).__name__}")


def make_payload(path, size, seed):
    """`size` pseudo-random bytes (fixed `seed`, so a failure is reproducible)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    rng = random.Random(seed)
    with open(path, "wb") as f:
        f.write(rng.randbytes(size))


def make_torrent(payload, out, announce, piece_length=16 << 10, private=False):
    """A v1 single-file .torrent for `payload`, written to `out`.
    `announce` is a URL or a list of URLs (one tier each, BEP 12).
    Returns the info hash as 40 lowercase hex digits."""
    urls = [announce] if isinstance(announce, str) else list(announce)
    pieces = []
    with open(payload, "rb") as f:
        while chunk := f.read(piece_length):
            pieces.append(hashlib.sha1(chunk).digest())
    info = {
        "name": os.path.basename(payload),
        "length": os.path.getsize(payload),
        "piece length": piece_length,
        "pieces": b"".join(pieces),
    }
    if private:
        info["private"] = 1
    meta = {"announce": urls[0], "info": info, "created by": "hayate interop"}
    if len(urls) > 1:
        meta["announce-list"] = [[u] for u in urls]
    with open(out, "wb") as f:
        f.write(bencode(meta))
    return hashlib.sha1(bencode(info)).hexdigest()


def same_file(a, b):
    """True when both files exist and hold the same bytes."""
    try:
        if os.path.getsize(a) != os.path.getsize(b):
            return False
        with open(a, "rb") as fa, open(b, "rb") as fb:
            return fa.read() == fb.read()
    except OSError:
        return False


# --------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------


class Proc:
    """A program of the case, in its own process group, output to a log."""

    def __init__(self, name, argv, logfile, env=None, cwd=None, stdin=None):
        self.name = name
        self.argv = [str(a) for a in argv]
        self.logfile = logfile
        out = open(logfile, "ab")
        full_env = dict(os.environ)
        full_env.update(env or {})
        try:
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL if stdin is None else stdin,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=full_env,
                cwd=cwd,
                preexec_fn=child_setup,
            )
        except OSError as e:
            raise Failed(f"cannot start {name} ({self.argv[0]}): {e}")
        finally:
            out.close()
        self.pid = self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def check_alive(self):
        if not self.alive():
            raise Failed(f"{self.name} exited with status {self.proc.returncode}")

    def wait(self, timeout):
        """The exit status, or Failed if still running after `timeout`."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise Failed(f"{self.name} still running after {timeout:.0f} s")

    def stop(self, grace=5.0):
        """SIGTERM to the group, SIGKILL after `grace` seconds."""
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(self.pid, sig)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                self.proc.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        # Children that outlived the leader are in the same group.
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def log(self, tail=150):
        try:
            with open(self.logfile, errors="replace") as f:
                lines = f.read().splitlines()
        except OSError as e:
            return f"(no log: {e})"
        cut = len(lines) - tail
        head = [f"... ({cut} earlier lines)"] if cut > 0 else []
        return "\n".join(head + lines[-tail:])


def run(argv, timeout=30, env=None, cwd=None):
    """Runs a short command (a control tool); its output, or Failed."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    try:
        r = subprocess.run(
            [str(a) for a in argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=full_env,
            cwd=cwd,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise Failed(f"{argv[0]}: {e}")
    if r.returncode != 0:
        raise Failed(f"{' '.join(map(str, argv))} exited {r.returncode}: {r.stdout}{r.stderr}")
    return r.stdout


# --------------------------------------------------------------------------
# The tracker
# --------------------------------------------------------------------------

REQUEST_LINE = re.compile(r"\bDEBUG hayate::(?:http::conn|udp::front)\] (http|udp) (\S+): (.*)$")


UDP_EVENTS = {0: "", 1: "completed", 2: "started", 3: "stopped"}


def parse_udp_announce(hex_datagram):
    """{peer_id, port, uploaded, downloaded, left, event, url} of a BEP 15
    announce (strings, as an HTTP query's values), None otherwise. `url` is
    the BEP 41 URL data after the 98 bytes ("" without)."""
    b = bytes.fromhex(hex_datagram)
    if len(b) < 98 or int.from_bytes(b[8:12], "big") != 1:
        return None
    return {
        "peer_id": b[36:56].decode("latin-1"),
        "downloaded": str(int.from_bytes(b[56:64], "big")),
        "left": str(int.from_bytes(b[64:72], "big")),
        "uploaded": str(int.from_bytes(b[72:80], "big")),
        "event": UDP_EVENTS.get(int.from_bytes(b[80:84], "big"), "?"),
        "port": str(int.from_bytes(b[96:98], "big")),
        "url": bep41_url(b[98:]).decode("latin-1"),
    }


def bep41_url(options):
    """The URL data of BEP 41 options: type 0 ends them, 1 is a one-byte
    no-op, 2 is a length byte and that many bytes of URL data."""
    url, i = b"", 0
    while i < len(options) and options[i] != 0:
        if options[i] == 1:
            i += 1
        elif i + 1 < len(options):
            n = options[i + 1]
            if options[i] == 2:
                url += options[i + 2:i + 2 + n]
            i += 2 + n
        else:
            break
    return url


def announce_events(seen, ip):
    """The event of each announce from `ip` in `Tracker.announces_by_source`
    ("" for a plain update)."""
    return [q.get("event", "") for q in seen.get(ip, [])]


def without_flags(args, names):
    """`args` (`--flag value` pairs and `--flag=value` words) less the
    flags in `names`."""
    out, i = [], 0
    while i < len(args):
        word = args[i]
        single = "=" in word
        n = 1 if single else 2
        if word.split("=", 1)[0] not in names:
            out += args[i:i + n]
        i += n
    return out


class Site:
    """Private mode's side of a case: what a Gazelle site holds. Two random
    32-character secrets, the SQLite database in the case's work directory,
    and the users the suite registers (a name each: "seeder", "leecher1",
    ...) with ids from 1 and random 32-character passkeys."""

    def __init__(self, workdir):
        self.site_password = secrets.token_hex(16)
        self.report_password = secrets.token_hex(16)
        self.database = os.path.join(workdir, "hayate.db")
        self.users = {}  # name -> (id, passkey)
        self.torrent_id = None

    def flags(self):
        """hayate's private-mode flags. A flush every second, so the
        database follows the swarm during the case too; the last flush
        happens at SIGTERM anyway."""
        return ["--mode", "private",
                "--site-password", self.site_password,
                "--report-password", self.report_password,
                "--database", f"sqlite:{self.database}",
                "--flush-interval", "1s"]

    def read(self):
        """What the database holds: {'users': {id: (Uploaded, Downloaded)},
        'torrents': {id: (Seeders, Leechers, Snatched)}, 'snatches':
        [(uid, fid)], 'peers': [(uid, fid, active, uploaded, downloaded,
        remaining)]} (Gazelle's classic tables, src/db/sqlite.rs)."""
        if not os.path.exists(self.database):
            raise Failed(f"no database at {self.database}")
        # Read-only: the file is hayate's (it may still hold a WAL).
        db = sqlite3.connect(f"file:{self.database}?mode=ro", uri=True, timeout=5)
        try:
            q = lambda sql: db.execute(sql).fetchall()  # noqa: E731
            return {
                "users": {r[0]: (r[1], r[2]) for r in
                          q("SELECT ID, Uploaded, Downloaded FROM users_main")},
                "torrents": {r[0]: (r[1], r[2], r[3]) for r in
                             q("SELECT ID, Seeders, Leechers, Snatched FROM torrents")},
                "snatches": q("SELECT uid, fid FROM xbt_snatched ORDER BY uid"),
                "peers": q("SELECT uid, fid, active, uploaded, downloaded, remaining "
                           "FROM xbt_files_users ORDER BY uid"),
            }
        except sqlite3.Error as e:
            raise Failed(f"cannot read the database {self.database}: {e}")
        finally:
            db.close()


class Tracker(Proc):
    """The hayate binary on ephemeral ports: HTTP and UDP on 127.0.0.1 and
    [::1], every request logged at debug. With `site` (a Site) in private
    mode (its flags, then the suite's `extra`). A flag in
    HAYATE_INTEROP_TRACKER_ARGS replaces the harness's or the suite's own."""

    def __init__(self, binary, workdir, extra=(), site=None):
        self.serving = queue.Queue()
        self.lines = []
        self.lock = threading.Lock()
        self.site = site  # a Site in private mode, None in public mode
        own = [
            "--config", "/dev/null",
            "--http-listen", "127.0.0.1:0, [::1]:0",
            "--udp-listen", "127.0.0.1:0, [::1]:0",
            "--workers", "2",
            "--log-level", "debug",
            *(site.flags() if site else ()),
            *extra,
        ]
        # A way to check that a suite can fail, e.g. "--allowlist
        # /dev/null" refuses every public announce. hayate refuses a flag
        # given twice, so a flag named here replaces the harness's or the
        # suite's own ("--mode public" in a private case).
        env = shlex.split(os.environ.get("HAYATE_INTEROP_TRACKER_ARGS", ""))
        named = {a.split("=", 1)[0] for a in env if a.startswith("--")}
        argv = [binary, *without_flags(own, named), *env]
        logfile = os.path.join(workdir, "hayate.log")
        super().__init__("hayate", argv, logfile, stdin=None)
        self.watcher = threading.Thread(target=self._watch, daemon=True)
        self.watcher.start()
        try:
            line = self.serving.get(timeout=15)
        except queue.Empty:
            self.stop()
            raise Failed("hayate did not print its 'serving' line within 15 s: "
                         f"{' '.join(self.argv)}\n{self.log(20)}")
        if line is None:
            raise Failed(f"hayate exited before serving (status {self.proc.wait()}): "
                         f"{' '.join(self.argv)}\n{self.log(20)}")
        self.http, self.udp = {}, {}
        for proto, addr in re.findall(r"(http|udp)://(\S+?),?(?=\s)", line):
            family = "ipv6" if addr.startswith("[") else "ipv4"
            getattr(self, proto)[family] = addr
        if len(self.http) != 2 or len(self.udp) != 2:
            raise Failed(f"cannot parse hayate's serving line: {line!r}")

    def _watch(self):
        """Follows the log file (the process writes it directly)."""
        pos = 0
        while True:
            try:
                with open(self.logfile, errors="replace") as f:
                    f.seek(pos)
                    chunk = f.read()
                    pos = f.tell()
            except OSError:
                chunk = ""
            for line in chunk.splitlines():
                with self.lock:
                    self.lines.append(line)
                if " serving " in line:
                    self.serving.put(line)
            if not chunk:
                if not self.alive():
                    self.serving.put(None)
                    return
                time.sleep(0.05)

    def url(self, proto, family, path="/announce"):
        """The announce URL of a protocol and family."""
        addr = (self.http if proto == "http" else self.udp)[family]
        return f"{proto}://{addr}{path}"

    def stats(self):
        """Every sample of /stats: {'name{labels}': value}."""
        with urllib.request.urlopen(f"http://{self.http['ipv4']}/stats", timeout=5) as r:
            text = r.read().decode()
        values = {}
        for line in text.splitlines():
            m = re.match(r"^(hayate_\w+(?:\{[^}]*\})?) (\S+)$", line)
            if m:
                values[m.group(1)] = float(m.group(2))
        return values

    def announces(self, proto, family):
        key = f'hayate_announces_total{{proto="{proto}",family="{family}"}}'
        return int(self.stats().get(key, 0))

    def swarm(self, family):
        """(seeders, leechers) of a family over the whole tracker, from /stats.
        In private mode the private swarm's gauges, which have no family (the
        case's tracker holds the case's clients only; the announce counters
        say which family they came over)."""
        s = self.stats()
        if self.site is not None:
            return tuple(int(s.get(f'hayate_private_peers{{kind="{kind}"}}', 0))
                         for kind in ("seeder", "leecher"))
        return tuple(
            int(s.get(f'hayate_peers{{kind="{kind}",family="{family}"}}', 0))
            for kind in ("seeder", "leecher")
        )

    def check_counters(self, proto, family, logged):
        """hayate_announces_total of (proto, family) equals `logged`, the
        announces the suite saw in the log; the other three stayed 0 (the
        tracker is the case's own, so any there is a fallback)."""
        combos = [(p, f) for p in ("http", "udp") for f in FAMILIES]
        counts = {(p, f): self.announces(p, f) for p, f in combos}
        if counts[(proto, family)] == 0:
            raise Failed(f"hayate counted no {proto}/{family} announce")
        if counts[(proto, family)] != logged:
            raise Failed(f'hayate_announces_total{{proto="{proto}",family="{family}"}} is '
                         f"{counts[(proto, family)]}, but its log shows {logged} announces")
        others = {k: v for k, v in counts.items() if k != (proto, family) and v}
        if others:
            raise Failed(f"announces counted over other protocols or families: {others}")
        return counts[(proto, family)]

    def wait_swarm(self, family, want, what, timeout, proc_check=None):
        """Waits until /stats counts `want` = (seeders, leechers) in `family`."""
        try:
            wait_until(f"{what}: hayate to count {want[0]} seeders and {want[1]} leechers",
                       lambda: self.swarm(family) == want, timeout, interval=0.5,
                       proc_check=proc_check)
        except Failed as e:
            if not str(e).startswith("timed out"):
                raise  # a process died or a tracker complained: that says it
            raise Failed(f"{e} (it counts {self.swarm(family)})")

    def announces_by_source(self, proto):
        """{source IP: [announce fields, in order]} from the request log:
        the query parameters of an HTTP announce (latin-1, so binary
        values survive), or peer_id/left/event/port of a UDP one."""
        out = {}
        for p, source, request in self.requests():
            if p != proto:
                continue
            if p == "udp":
                fields = parse_udp_announce(request)
            else:
                target = request.split(" ")[-1]
                fields = None
                if target.partition("?")[0].endswith("/announce"):  # /<passkey>/announce too
                    fields = dict(urllib.parse.parse_qsl(
                        target.partition("?")[2], keep_blank_values=True, encoding="latin-1"))
            if fields is not None:
                out.setdefault(source.rsplit(":", 1)[0].strip("[]"), []).append(fields)
        return out

    def wait_counters(self, proto, family):
        """check_counters once the log has caught up with /stats (/stats can
        count an announce a moment before its log line is read)."""
        def logged():
            return sum(len(qs) for qs in self.announces_by_source(proto).values())
        try:
            wait_until(f"hayate's log to show every {proto}/{family} announce /stats counts",
                       lambda: logged() >= self.announces(proto, family), 5, interval=0.2)
        except Failed as e:
            raise Failed(f"{e}: /stats counts {self.announces(proto, family)}, the log shows {logged()}")
        return self.check_counters(proto, family, logged())

    def requests(self):
        """Every request logged so far: [(proto, source, request)], where
        request is `GET /announce?...` (HTTP) or the datagram in hex (UDP)."""
        with self.lock:
            lines = list(self.lines)
        out = []
        for line in lines:
            m = REQUEST_LINE.search(line)
            if m:
                out.append((m.group(1), m.group(2), m.group(3)))
        return out

    # ---- private mode ---------------------------------------------------

    def update(self, **params):
        """A control API call, as the site makes it:
        GET /<site_password>/update?action=...; the body must be `success`."""
        if self.site is None:
            raise Failed("a control API call to a public tracker")
        query = urllib.parse.urlencode(params)
        url = f"http://{self.http['ipv4']}/{self.site.site_password}/update?{query}"
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                body = r.read().decode(errors="replace")
        except OSError as e:
            raise Failed(f"control API action={params.get('action')}: {e}")
        if body != "success":
            raise Failed(f"control API action={params.get('action')} answered {body[:200]!r}, "
                         "not 'success'")

    def add_user(self, name):
        """Registers user `name` (the next id, a random passkey, visible);
        returns its passkey."""
        uid = len(self.site.users) + 1
        passkey = secrets.token_hex(16)
        self.update(action="add_user", passkey=passkey, id=uid, visible=1)
        self.site.users[name] = (uid, passkey)
        return passkey

    def add_torrent(self, info_hash, torrent_id=1):
        """Registers the torrent (40 hex digits), normal leech type."""
        self.update(action="add_torrent", info_hash=info_hash, id=torrent_id, freetorrent=0)
        self.site.torrent_id = torrent_id

    def passkey_url(self, proto, family, name):
        """User `name`'s announce URL: /<passkey>/announce, over HTTP as the
        path, over UDP as BEP 41 URL data."""
        return self.url(proto, family, f"/{self.site.users[name][1]}/announce")

    def shutdown(self, timeout=10):
        """SIGTERM: the flusher commits what it holds and hayate must exit 0."""
        try:
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        status = self.wait(timeout)
        self.watcher.join(5)  # it reads the log to its end once hayate is gone
        if status != 0:
            raise Failed(f"hayate exited with status {status} after SIGTERM (expected 0)")

    def reported_credit(self):
        """{passkey: (uploaded, downloaded)}: the credit GAZELLE.md's rule
        gives for the counters the clients reported, every announce in the
        request log (HTTP: the passkey is the path's first segment; UDP:
        of the BEP 41 URL data). Per peer (passkey + peer_id), in log order:
        the first announce and every `started` set the baseline, counters
        lower than the baseline reset it, anything else credits the
        difference. (A client waits for each reply, so a peer's announces
        reach the log in the order hayate served them.)"""
        last, credit = {}, {}
        for proto, _, request in self.requests():
            if proto == "udp":
                q = parse_udp_announce(request)
                path = q["url"].partition("?")[0] if q else ""
            else:
                path, _, query = request.split(" ")[-1].partition("?")
                q = dict(urllib.parse.parse_qsl(query, keep_blank_values=True, encoding="latin-1"))
            parts = path.split("/")
            if q is None or len(parts) != 3 or parts[2] != "announce":
                continue
            passkey = parts[1]
            try:
                now = (int(q["uploaded"]), int(q["downloaded"]))
            except (KeyError, ValueError):
                continue  # refused by hayate too
            peer = (passkey, q.get("peer_id"))
            up, down = credit.get(passkey, (0, 0))
            old = last.get(peer)
            if old is not None and q.get("event") != "started" and now[0] >= old[0] and now[1] >= old[1]:
                up, down = up + now[0] - old[0], down + now[1] - old[1]
            credit[passkey] = (up, down)
            last[peer] = now
        return credit

    def check_credit(self, payload_bytes, seeder, leechers, note):
        """After `shutdown`: the database shows the swarm the case ran.
        `seeder` and `leechers` are user names; every client stopped (so
        sent event=stopped) before. The seeder's user uploaded something
        and downloaded nothing; each leecher's user (it started empty)
        downloaded the payload: payload <= Downloaded <= 2 x payload (room
        for what a client counts beyond the payload, e.g. a piece fetched
        twice); the torrent was snatched once per leecher (xbt_snatched has
        exactly their rows) and counts no peer; every user has a peer row,
        none of them active. And each user's Uploaded and Downloaded are
        exactly what the counters its client reported add up to
        (`reported_credit`): hayate credited every byte, once."""
        db = self.site.read()
        ids = {name: uid for name, (uid, _) in self.site.users.items()}
        tid = self.site.torrent_id
        credit = {name: db["users"].get(uid) for name, uid in ids.items()}
        note(f"database: credit (uploaded, downloaded) {credit}; torrent "
             f"(seeders, leechers, snatched) {db['torrents'].get(tid)}; "
             f"snatches {db['snatches']}; peer rows (uid, fid, active, up, down, left) "
             f"{db['peers']}")
        missing = [name for name, c in credit.items() if c is None]
        if missing:
            raise Failed(f"users_main has no row for {missing}: {db['users']}")
        reported = self.reported_credit()
        note(f"the clients' announces add up to (uploaded, downloaded) "
             f"{ {name: reported.get(pk) for name, (_, pk) in self.site.users.items()} }")
        for name, (uid, passkey) in self.site.users.items():
            want = reported.get(passkey, (0, 0))
            if credit[name] != want:
                raise Failed(f"{name}'s user ({uid}) has (Uploaded, Downloaded) {credit[name]} in the "
                             f"database, but its client's announces add up to {want}")
        up, down = credit[seeder]
        if up <= 0:
            raise Failed(f"the seeder's user ({ids[seeder]}) has Uploaded {up}, expected > 0")
        if down != 0:
            raise Failed(f"the seeder's user ({ids[seeder]}) has Downloaded {down}, expected 0 "
                         "(it started with the whole payload)")
        for name in leechers:
            down = credit[name][1]
            if not payload_bytes <= down <= 2 * payload_bytes:
                raise Failed(f"{name}'s user ({ids[name]}) has Downloaded {down}, expected "
                             f"{payload_bytes} to {2 * payload_bytes} (the payload it fetched)")
        if tid not in db["torrents"]:
            raise Failed(f"torrents has no row {tid}: {db['torrents']}")
        seeders, leechers_n, snatched = db["torrents"][tid]
        if snatched != len(leechers):
            raise Failed(f"torrents.Snatched is {snatched}, expected {len(leechers)} "
                         "(each leecher announced completed)")
        if (seeders, leechers_n) != (0, 0):
            raise Failed(f"torrents counts {seeders} seeders and {leechers_n} leechers after "
                         "every client stopped, expected 0 and 0")
        want = sorted((ids[name], tid) for name in leechers)
        if sorted(db["snatches"]) != want:
            raise Failed(f"xbt_snatched holds (uid, fid) {db['snatches']}, expected {want}")
        rows = {r[0] for r in db["peers"] if r[1] == tid}
        if rows != set(ids.values()):
            raise Failed(f"xbt_files_users has rows for users {sorted(rows)}, expected "
                         f"{sorted(ids.values())}")
        active = [r for r in db["peers"] if r[2]]
        if active:
            raise Failed(f"xbt_files_users rows still active after event=stopped: {active}")


# --------------------------------------------------------------------------
# Cases and suites
# --------------------------------------------------------------------------


class Case:
    """One client x protocol x family run: its work directory, processes
    and tracker. `start` registers a process; all are stopped at the end."""

    def __init__(self, suite, label, workdir):
        self.suite = suite
        self.label = label
        self.dir = workdir
        self.procs = []
        self.notes = []
        self.started = time.monotonic()

    def path(self, *parts):
        p = os.path.join(self.dir, *parts)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        return p

    def note(self, msg):
        self.notes.append(f"  {time.monotonic() - self.started:6.2f}s {msg}")

    def start(self, name, argv, env=None, cwd=None):
        p = Proc(name, argv, self.path("logs", f"{name}.log"), env=env, cwd=cwd)
        self.procs.append(p)
        self.note(f"started {name} (pid {p.pid}): {' '.join(p.argv)}")
        return p

    def tracker(self, extra=(), private=False):
        """hayate for this case; `private`: in private mode with a Site of
        the case (see the module docstring)."""
        os.makedirs(self.path("logs", "x"), exist_ok=True)
        site = Site(self.dir) if private else None
        t = Tracker(self.suite.binary, os.path.join(self.dir, "logs"), extra, site)
        self.procs.append(t)
        self.note(f"hayate {' '.join(t.argv[1:])}")
        self.note(f"hayate serving http {t.http} udp {t.udp}"
                  f"{f', private, database {site.database}' if site else ''}")
        return t

    def check_alive(self):
        for p in self.procs:
            p.check_alive()

    def capture(self, tracker, client, proto, family, version):
        """Keeps the client's requests as a fixture (HAYATE_CAPTURE=1):
        tests/fixtures/clients/CLIENT-PROTO-FAMILY.txt. Announces and
        scrapes for HTTP (not /stats), every datagram for UDP."""
        reqs = [
            r for p, _, r in tracker.requests()
            if p == proto and (p == "udp" or not r.split(" ")[-1].startswith("/stats"))
        ]
        if not reqs:
            raise Failed(f"no {proto} request from {client} reached the tracker log")
        self.note(f"{len(reqs)} {proto} requests from {client} in the tracker log")
        if os.environ.get("HAYATE_CAPTURE") != "1":
            return
        os.makedirs(FIXTURES, exist_ok=True)
        name = f"{client}-{proto}-{family}.txt"
        with open(os.path.join(FIXTURES, name), "w") as f:
            f.write(f"# client: {version}\n")
            f.write(f"# captured {time.strftime('%Y-%m-%d')} by tests/interop "
                    f"(make interop-capture): {proto} over {family}, in order\n")
            for r in reqs:
                f.write(("udp " + r if proto == "udp" else r) + "\n")
        self.note(f"wrote fixture {name}")

    def close(self):
        for p in reversed(self.procs):
            p.stop()


class Suite:
    """Runs cases, prints a line per case and, on failure, every log."""

    def __init__(self, name, binary=None):
        self.name = name
        self.binary = binary or os.environ.get("HAYATE_BIN") or (
            sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target", "release", "hayate")
        )
        if not os.access(self.binary, os.X_OK):
            print(f"{name}: no hayate binary at {self.binary}", file=sys.stderr)
            sys.exit(2)
        self.passed = 0
        self.failed = 0
        self.keep = os.environ.get("HAYATE_INTEROP_KEEP") == "1"

    def case(self, label, body, timeout_note=""):
        """Runs body(case); a Failed or any exception fails the case."""
        workdir = tempfile.mkdtemp(prefix=f"hayate-{self.name}-{label.replace(' ', '-')}-")
        case = Case(self, label, workdir)
        ok, why = False, ""
        try:
            body(case)
            ok = True
        except Failed as e:
            why = str(e)
        except Exception:  # a bug in the suite is a failure, shown in full
            why = traceback.format_exc()
        finally:
            case.close()
        took = time.monotonic() - case.started
        if ok:
            self.passed += 1
            print(f"{self.name}: {label}: ok ({took:.1f} s)", flush=True)
        else:
            self.failed += 1
            print(f"{self.name}: {label}: FAILED after {took:.1f} s: {why}", flush=True)
            print("\n".join(case.notes))
            for p in case.procs:
                print(f"----- {p.name} (pid {p.pid}, {p.logfile}) -----")
                print(p.log())
            print("-----", flush=True)
        if ok and not self.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"{self.name}: {label}: work directory kept: {workdir}", flush=True)
        return ok

    def skip(self, label, why):
        print(f"{self.name}: {label}: skipped: {why}", flush=True)

    def finish(self):
        print(f"interop-{self.name}: {self.passed} passed, {self.failed} failed", flush=True)
        return 0 if self.failed == 0 and self.passed > 0 else 1
