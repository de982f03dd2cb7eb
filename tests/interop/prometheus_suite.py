"""The stats page through a real Prometheus text parser: prometheus_client's
(PyPI, installed in the interop venv by `make interop-clients`).

For hayate in public and in private mode, after a few announces: the page's
first line is the health line (a comment, which the parser skips), the whole
page parses, and the parsed families hold the figures the page shows (every
sample line of the page is a parsed sample with the same value). Prints
`interop-prometheus: N passed, M failed`.
"""

import re
import signal
import sys
import urllib.request

from harness import Failed, Suite

HEALTH = re.compile(
    r"^# hayate \S+ up (\d+d )?(\d+h )?(\d+m|\d+s): (private, [\d,]+ users, )?"
    r"[\d,]+ torrents, [\d,]+ peers \(\d+% seeders\), [\d,]+ req/s, [\d,]+ errors/s$"
)


def fetch(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.read().decode()


def run_case(case, private):
    from prometheus_client.parser import text_string_to_metric_families

    tracker = case.tracker(private=private)
    base = f"http://{tracker.http['ipv4']}"
    # Some traffic, so counters and gauges are not all zero.
    for i in range(3):
        path = "/announce?info_hash=" + "%%%02x" % i * 20 + "&peer_id=-HY0001-abcdefghijkl" \
               "&port=6881&uploaded=0&downloaded=0&left=0"
        try:
            fetch(base + path)
        except OSError:
            pass
    page = fetch(base + "/stats")
    first = page.splitlines()[0] if page else ""
    if not HEALTH.match(first):
        raise Failed(f"first line is not the health line: {first!r}")
    if private and "private, " not in first:
        raise Failed(f"private mode's health line does not say so: {first!r}")
    try:
        families = list(text_string_to_metric_families(page))
    except Exception as e:  # the parser's own words
        raise Failed(f"prometheus_client cannot parse the page: {e}")
    parsed = {}
    for family in families:
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sample.labels.items())
            parsed[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    shown = {}
    for line in page.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, value = line.rsplit(" ", 1)
        shown[name] = float(value)
    if len(shown) < 20:
        raise Failed(f"only {len(shown)} samples on the page")
    missing = [k for k in shown if parsed.get(k) != shown[k]]
    if missing:
        raise Failed(f"{len(missing)} samples differ once parsed, e.g. {missing[:3]}")
    want = "hayate_private_users" if private else "hayate_announces"
    if not any(f.name == want for f in families):
        raise Failed(f"no {want} family among {sorted(f.name for f in families)[:10]}...")
    case.note(f"{len(families)} families, {len(parsed)} samples; {first}")


def main():
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    suite = Suite("prometheus")
    try:
        import prometheus_client
        print(f"prometheus: prometheus_client from {prometheus_client.__file__}, "
              f"hayate {suite.binary}", flush=True)
    except ImportError as e:
        print(f"prometheus: {e} (make interop-clients installs it)")
        suite.failed += 1
        return suite.finish()
    for private in (False, True):
        suite.case("private" if private else "public", lambda case, p=private: run_case(case, p))
    return suite.finish()


if __name__ == "__main__":
    sys.exit(main())
