#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora from real inputs (`make fuzz` runs it).

    fuzz/corpus/http_request/  the `GET` lines of tests/fixtures/clients/*.txt
                               as whole request heads (plus a scrape, HEAD,
                               a proxied request and a pipelined pair)
    fuzz/corpus/udp_codec/     the `udp HEX` datagrams of the same fixtures
    fuzz/corpus/conf_file/     tracker.conf, and each of its settings alone

Seeds are named by content hash, so running it again adds nothing twice and
never touches what libFuzzer added to the corpus. Usage: seed_corpus.py [REPO]
"""

import hashlib
import pathlib
import sys

REPO = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).parent.parent)
CORPUS = REPO / "fuzz" / "corpus"


def write(target, data):
    directory = CORPUS / target
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / ("seed-" + hashlib.sha1(data).hexdigest())
    if not path.exists():
        path.write_bytes(data)


def head(target, headers=()):
    lines = ["GET %s HTTP/1.1" % target, "Host: tracker.example:6969"]
    lines += headers
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def main():
    counts = {}
    gets, datagrams = [], []
    for fixture in sorted((REPO / "tests" / "fixtures" / "clients").glob("*.txt")):
        for line in fixture.read_text(encoding="latin-1").splitlines():
            if line.startswith("GET "):
                gets.append(line[4:])
            elif line.startswith("udp "):
                datagrams.append(bytes.fromhex(line[4:]))
    for target in gets:
        write("http_request", head(target, ["User-Agent: fixture", "Accept-Encoding: gzip"]))
    if gets:
        # The same announce as a proxy passes it on, and pipelined after a scrape.
        write("http_request", head(gets[0], ["X-Forwarded-For: 203.0.113.9, 10.0.0.2"]))
        query = gets[0].partition("?")[2]
        hashes = [p for p in query.split("&") if p.startswith("info_hash=")]
        scrape = head("/scrape?" + "&".join(hashes * 2))
        write("http_request", scrape)
        write("http_request", scrape + head(gets[0]).replace(b"GET", b"HEAD", 1))
    for datagram in datagrams:
        write("udp_codec", datagram)
    conf = (REPO / "tracker.conf").read_bytes()
    write("conf_file", conf)
    for line in conf.decode("utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            write("conf_file", (line + "\n").encode("utf-8"))
    for target in ("http_request", "udp_codec", "conf_file"):
        counts[target] = sum(1 for p in (CORPUS / target).glob("seed-*"))
    print("seed corpus: " + ", ".join("%s %d" % kv for kv in counts.items()))


if __name__ == "__main__":
    main()
