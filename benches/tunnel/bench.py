#!/usr/bin/env python3
"""privline-tunnel against direct connections, spiped and stunnel4, in one
run on one machine with the same backends (run by benches/tunnel/run.sh).

    python3 benches/tunnel/bench.py BUILD_DIR [--rounds N] [--seconds S] [--bulk-mib M]

For each path (direct; privline-tunnel, both ends, privline/1; spiped;
stunnel4 with TLS 1.3 and TLS_CHACHA20_POLY1305_SHA256; stunnel4 with
TLS 1.3 and its default suite) it measures, over 127.0.0.1:
  bulk      one connection: curl fetches a 1 GiB file from nginx (MB/s)
  conn/s    wrk -H 'Connection: close' against nginx: a new TCP connection
            per request through the pair (requests = connections per second)
  redis     redis-benchmark -c 50 -t set,get (requests/s, p50 and p99 ms)
Each figure is the median of --rounds runs (default 3), the rounds
interleaved across the paths so that a noisy moment does not hit one path
only. Prints a Markdown table and the raw runs.
"""

import argparse
import csv
import io
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "tunnel"))
from tunnelkit import (  # noqa: E402 - needs the path above
    HOST, PROCS, free_port, listening_port, start, start_nginx, stop_all, wait_for, wait_port, write_nginx_conf,
)


def cpu_seconds(procs):
    """User + system CPU seconds used so far by these processes (all threads)."""
    total = 0
    for proc in procs:
        try:
            fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total / os.sysconf("SC_CLK_TCK")


def tunnel_port(log, timeout=15.0):
    if not wait_for(lambda: listening_port(Path(log).read_text(errors="replace")) is not None, timeout, 0.05):
        raise RuntimeError(f"no port in {log}")
    return listening_port(Path(log).read_text(errors="replace"))


class Bench:
    def __init__(self, build, tmp):
        self.build = build
        self.tmp = tmp
        self.paths = {}  # name -> {"http": port, "redis": port}
        self.procs = {}  # (name, "http" | "redis") -> the path's processes (both ends)

    # ---------------------------------------------------------------- backends
    def backends(self, bulk_mib):
        root = self.tmp / "nginx"
        (root / "www").mkdir(parents=True)
        with open(root / "www" / "bulk.bin", "wb") as f:
            f.truncate(bulk_mib << 20)  # zeros from the page cache: the cost measured is the path's
        (root / "www" / "index.html").write_text("hello\n")
        self.nginx_port = free_port()
        write_nginx_conf(root, self.nginx_port, 8192)
        start_nginx(root, self.tmp / "nginx.log")
        self.redis_port = free_port()
        start(["redis-server", "--port", str(self.redis_port), "--bind", HOST, "--save", "", "--appendonly", "no",
               "--dir", self.tmp], self.tmp / "redis.log")
        if not (wait_port(self.nginx_port) and wait_port(self.redis_port)):
            raise RuntimeError("the backends did not start")
        self.paths["direct"] = {"http": self.nginx_port, "redis": self.redis_port}
        self.procs[("direct", "http")] = self.procs[("direct", "redis")] = []

    # ---------------------------------------------------------------- paths
    def privline(self):
        keys = self.tmp / "keys"
        keys.mkdir(mode=0o700)
        server_public = subprocess.run([self.build / "privline-keygen", "--out", keys / "server.secret"],
                                       capture_output=True, text=True, check=True).stdout.split()[1]
        subprocess.run([self.build / "privline-keygen", "--out", keys / "client.secret"], capture_output=True,
                       check=True)
        with open(keys / "network.key", "wb") as f:
            f.write(os.urandom(32))
        ports = {}
        for kind, target in (("http", self.nginx_port), ("redis", self.redis_port)):
            slog = self.tmp / f"privline-server-{kind}.log"
            clog = self.tmp / f"privline-client-{kind}.log"
            first = len(PROCS)
            start([self.build / "privline-tunnel", "server", "--listen", f"{HOST}:0", "--target",
                   f"{HOST}:{target}", "--secret-file", keys / "server.secret", "--network-key-file",
                   keys / "network.key", "--max-per-ip", "1000000", "--quiet"] + self.workers, slog)
            sport = tunnel_port(slog)
            start([self.build / "privline-tunnel", "client", "--listen", f"{HOST}:0", "--connect",
                   f"{HOST}:{sport}", "--server-key", server_public, "--secret-file", keys / "client.secret",
                   "--network-key-file", keys / "network.key", "--quiet"] + self.workers, clog)
            ports[kind] = tunnel_port(clog)
            self.procs[("privline-tunnel", kind)] = PROCS[first:]
        self.paths["privline-tunnel"] = ports

    def spiped(self):
        key = self.tmp / "spiped.key"
        with open(key, "wb") as f:
            f.write(os.urandom(32))
        os.chmod(key, 0o600)
        ports = {}
        for kind, target in (("http", self.nginx_port), ("redis", self.redis_port)):
            mid, front = free_port(), free_port()
            first = len(PROCS)
            start(["spiped", "-F", "-d", "-n", "0", "-s", f"[{HOST}]:{mid}", "-t", f"[{HOST}]:{target}", "-k", key],
                  self.tmp / f"spiped-d-{kind}.log")
            start(["spiped", "-F", "-e", "-n", "0", "-s", f"[{HOST}]:{front}", "-t", f"[{HOST}]:{mid}", "-k", key],
                  self.tmp / f"spiped-e-{kind}.log")
            if not (wait_port(mid) and wait_port(front)):
                raise RuntimeError("spiped did not start")
            ports[kind] = front
            self.procs[("spiped", kind)] = PROCS[first:]
        self.paths["spiped"] = ports

    def stunnel(self, name, ciphersuite):
        cert = self.tmp / "stunnel.pem"
        if not cert.exists():
            subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                            "-nodes", "-days", "2", "-subj", "/CN=localhost", "-keyout", self.tmp / "stunnel.key",
                            "-out", cert], capture_output=True, check=True)
        suite = f"ciphersuites = {ciphersuite}\n" if ciphersuite else ""
        ports = {}
        for kind, target in (("http", self.nginx_port), ("redis", self.redis_port)):
            mid, front = free_port(), free_port()
            tag = f"{name}-{kind}"
            (self.tmp / f"{tag}-server.conf").write_text(
                f"foreground = yes\npid =\n[s]\naccept = {HOST}:{mid}\nconnect = {HOST}:{target}\n"
                f"cert = {cert}\nkey = {self.tmp / 'stunnel.key'}\nsslVersionMin = TLSv1.3\n{suite}")
            (self.tmp / f"{tag}-client.conf").write_text(
                f"foreground = yes\npid =\n[c]\nclient = yes\naccept = {HOST}:{front}\nconnect = {HOST}:{mid}\n"
                f"CAfile = {cert}\nverifyPeer = yes\ncheckHost = localhost\nsslVersionMin = TLSv1.3\n{suite}")
            first = len(PROCS)
            start(["stunnel4", self.tmp / f"{tag}-server.conf"], self.tmp / f"{tag}-server.log")
            start(["stunnel4", self.tmp / f"{tag}-client.conf"], self.tmp / f"{tag}-client.log")
            if not (wait_port(mid) and wait_port(front)):
                raise RuntimeError(f"stunnel {name} did not start")
            ports[kind] = front
            self.procs[(name, kind)] = PROCS[first:]
        self.paths[name] = ports

    # ---------------------------------------------------------------- measurements
    def bulk(self, port):
        out = subprocess.run(["curl", "-sS", "--fail", "-o", "/dev/null", "-w", "%{speed_download} %{size_download}",
                              f"http://{HOST}:{port}/bulk.bin"], capture_output=True, text=True, timeout=300)
        speed, size = out.stdout.split()
        if out.returncode != 0 or int(float(size)) != self.bulk_bytes:
            raise RuntimeError(f"bulk fetch failed: {out.stderr}")
        return float(speed) / 1e6  # MB/s

    def connections(self, port, seconds):
        out = subprocess.run(["wrk", "-t", "2", "-c", "20", "-d", f"{seconds}s", "-H", "Connection: close",
                              f"http://{HOST}:{port}/index.html"], capture_output=True, text=True,
                             timeout=seconds + 60)
        m = re.search(r"Requests/sec:\s+([\d.]+)", out.stdout)
        errors = re.search(r"Socket errors: (.*)", out.stdout)
        non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out.stdout)
        if not m:
            raise RuntimeError(f"wrk: {out.stdout} {out.stderr}")
        note = (errors.group(1) if errors else "") + (f" non-2xx {non2xx.group(1)}" if non2xx else "")
        return float(m.group(1)), note.strip()

    def redis(self, port, requests):
        out = subprocess.run(["redis-benchmark", "-h", HOST, "-p", str(port), "-c", str(self.redis_clients), "-n", str(requests),
                              "-t", "set,get", "--csv"], capture_output=True, text=True, timeout=300)
        rows = list(csv.DictReader(io.StringIO(out.stdout)))
        if out.returncode != 0 or len(rows) != 2:
            raise RuntimeError(f"redis-benchmark: {out.stdout} {out.stderr}")
        rps = statistics.mean(float(r["rps"]) for r in rows)
        p50 = statistics.mean(float(r["p50_latency_ms"]) for r in rows)
        p99 = statistics.mean(float(r["p99_latency_ms"]) for r in rows)
        return rps, p50, p99


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("build")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--bulk-mib", type=int, default=1024)
    parser.add_argument("--redis-requests", type=int, default=100000)
    parser.add_argument("--privline-workers", type=int, help="--workers for both tunnel ends (default: theirs)")
    parser.add_argument("--redis-clients", type=int, default=50)
    parser.add_argument("--only", help="comma-separated paths to measure (default: all)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="privline-bench."))
    os.chmod(tmp, 0o755)  # nginx workers (another user) read the files
    bench = Bench(Path(args.build).resolve(), tmp)
    bench.bulk_bytes = args.bulk_mib << 20
    bench.redis_clients = args.redis_clients
    bench.workers = ["--workers", str(args.privline_workers)] if args.privline_workers else []
    results = {}
    try:
        bench.backends(args.bulk_mib)
        bench.privline()
        bench.spiped()
        bench.stunnel("stunnel chacha20", "TLS_CHACHA20_POLY1305_SHA256")
        bench.stunnel("stunnel default", None)
        names = [n for n in bench.paths if not args.only or n in args.only.split(",")]
        for name in names:
            results[name] = {"bulk": [], "conn": [], "redis": [], "notes": [], "cpu_bulk": [], "cpu_conn": [],
                             "cpu_redis": []}
        for r in range(args.rounds):
            for name in names:
                ports = bench.paths[name]
                http_procs, redis_procs = bench.procs[(name, "http")], bench.procs[(name, "redis")]
                cpu = cpu_seconds(http_procs)
                results[name]["bulk"].append(bench.bulk(ports["http"]))
                # the path's CPU seconds per GiB relayed
                results[name]["cpu_bulk"].append((cpu_seconds(http_procs) - cpu) / (bench.bulk_bytes / 2**30))
                cpu = cpu_seconds(http_procs)
                rate, note = bench.connections(ports["http"], args.seconds)
                # the path's CPU milliseconds per connection
                results[name]["cpu_conn"].append((cpu_seconds(http_procs) - cpu) * 1000 / (rate * args.seconds))
                results[name]["conn"].append(rate)
                if note:
                    results[name]["notes"].append(note)
                cpu = cpu_seconds(redis_procs)
                results[name]["redis"].append(bench.redis(ports["redis"], args.redis_requests))
                # the path's CPU microseconds per request (set and get: 2 x --redis-requests)
                results[name]["cpu_redis"].append((cpu_seconds(redis_procs) - cpu) * 1e6 / (2 * args.redis_requests))
                print(f"# round {r + 1} {name}: bulk {results[name]['bulk'][-1]:.0f} MB/s, "
                      f"{rate:.0f} conn/s {note}, redis {results[name]['redis'][-1][0]:.0f} req/s "
                      f"p50 {results[name]['redis'][-1][1]:.3f} p99 {results[name]['redis'][-1][2]:.3f} ms",
                      flush=True)
    finally:
        stop_all()
        shutil.rmtree(tmp, ignore_errors=True)
    print()
    print(f"| path | bulk, 1 connection ({args.bulk_mib} MiB), MB/s | new connections/s (wrk, Connection: close) "
          f"| redis-benchmark -c 50 set+get, req/s | p50 ms | p99 ms |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, r in results.items():
        rps = statistics.median(x[0] for x in r["redis"])
        p50 = statistics.median(x[1] for x in r["redis"])
        p99 = statistics.median(x[2] for x in r["redis"])
        print(f"| {name} | {statistics.median(r['bulk']):.0f} | {statistics.median(r['conn']):.0f} | {rps:.0f} "
              f"| {p50:.3f} | {p99:.3f} |")
    print()
    print("CPU used by the path's own processes (both ends, all threads; medians):")
    print()
    print("| path | s per GiB (bulk) | ms per connection | µs per Redis request |")
    print("|---|---:|---:|---:|")
    for name, r in results.items():
        if name != "direct":
            print(f"| {name} | {statistics.median(r['cpu_bulk']):.2f} | {statistics.median(r['cpu_conn']):.2f} "
                  f"| {statistics.median(r['cpu_redis']):.0f} |")
    for name, r in results.items():
        if r["notes"]:
            print(f"# {name}: wrk reported {'; '.join(r['notes'])}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        stop_all()
        sys.exit(130)
