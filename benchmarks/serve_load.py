"""Load on ``trus serve``: throughput, latency percentiles, statuses and the server's memory.

    python benchmarks/serve_load.py --model PATH [--requests 200] [--concurrency 8] [--burst 48]
                                    [--queue 16] [--workers 2] [--frames 8] [--precision auto|int8|fp32]

Writes ``--frames`` synthetic 1280x872 TRUS frames (``pipeline.synthetic``'s phantom) as grey
PNG files, starts the real service (``python -m pipeline.cli serve``, a child process) on
127.0.0.1 with ``--queue`` and ``--workers``, and with ``requests`` (one session per client
thread):

1. warms up (one request per frame), then reads the server's resident memory (RSS);
2. **steady load**: ``--requests`` requests of one frame each (JSON with outlines) from
   ``--concurrency`` clients at once, twice, reading the RSS after each pass (growth from the
   first pass on would be a leak: the first pass allocates what the service keeps);
3. **burst**: ``--burst`` requests at once, past the queue: the service admits ``--queue`` and
   answers the rest 503 with ``Retry-After`` at once;
4. a third steady pass, and the RSS after it.

It prints requests/s, frames/s, p50/p95/p99 latency, the statuses, and the RSS before, between
and after. It exits 1 when any response is a 5xx other than the burst's 503s, or a steady-load
request fails (nothing else: speed is reported, never judged). The load average is printed before
and after (other processes on the machine slow every figure).
"""

from __future__ import annotations

import argparse
import collections
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import psutil
import requests

from bench_frames import load, write_grey_frames
from pipeline.inference.runtime import PRECISIONS

START_TIMEOUT_S = 180.0


@dataclass(frozen=True)
class Reply:
    """One request's outcome: HTTP status (0: no response) and wall seconds."""

    status: int
    seconds: float
    retry_after: str | None = None


def free_port() -> int:
    """A TCP port free on 127.0.0.1 at the time of asking."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_service(model: Path, port: int, queue: int, workers: int, precision: str) -> subprocess.Popen:
    """Starts ``trus serve`` as a child process and waits until /healthz answers."""
    command = [sys.executable, "-m", "pipeline.cli", "serve", "--model", str(model), "--port", str(port),
               "--queue", str(queue), "--workers", str(workers), "--precision", precision]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"trus serve exited with {server.returncode}: {server.stderr.read()[-2000:]}")
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).ok:
                return server
        except requests.ConnectionError:
            time.sleep(0.2)
    server.kill()
    raise RuntimeError(f"trus serve did not answer within {START_TIMEOUT_S:.0f} s")


def send(url: str, frame: Path, session: requests.Session) -> Reply:
    """POSTs one frame for JSON; the reply's status and wall time."""
    start = time.perf_counter()
    try:
        response = session.post(url, files=[("files", (frame.name, frame.read_bytes()))], timeout=600)
    except requests.RequestException:
        return Reply(0, time.perf_counter() - start)
    return Reply(response.status_code, time.perf_counter() - start, response.headers.get("Retry-After"))


def run_load(url: str, frames: list[Path], count: int, concurrency: int) -> tuple[list[Reply], float]:
    """``count`` requests (frames round-robin) from ``concurrency`` client threads; the replies and wall seconds."""
    sessions = collections.defaultdict(requests.Session)

    def one(index: int) -> Reply:
        return send(url, frames[index % len(frames)], sessions[threading.get_ident()])

    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        replies = list(pool.map(one, range(count)))
    return replies, time.perf_counter() - start


def rss_mb(pid: int) -> float:
    """The process's resident memory, MiB."""
    return psutil.Process(pid).memory_info().rss / 2**20


def describe(name: str, replies: list[Reply], seconds: float) -> str:
    """One line: rate, latency percentiles of the 200s, statuses."""
    statuses = collections.Counter(reply.status for reply in replies)
    ok = sorted(reply.seconds for reply in replies if reply.status == 200)
    if len(ok) >= 2:
        cuts = statistics.quantiles(ok, n=100, method="inclusive")
        latency = f"p50 {1000 * cuts[49]:.0f} ms, p95 {1000 * cuts[94]:.0f} ms, p99 {1000 * cuts[98]:.0f} ms"
    else:
        latency = "latency: too few successes"
    return (f"{name}: {len(replies)} requests in {seconds:.1f} s = {len(ok) / seconds:.2f} frames/s; {latency}; "
            f"statuses {dict(sorted(statuses.items()))}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="an exported ONNX model")
    parser.add_argument("--requests", type=int, default=200, help="steady-load requests per pass (default 200)")
    parser.add_argument("--concurrency", type=int, default=8, help="steady-load clients at once (default 8)")
    parser.add_argument("--burst", type=int, default=48, help="requests sent at once past the queue (default 48)")
    parser.add_argument("--queue", type=int, default=16, help="the service's --queue (default 16, its own)")
    parser.add_argument("--workers", type=int, default=2, help="the service's --workers (default 2, its own)")
    parser.add_argument("--frames", type=int, default=8, help="distinct synthetic frames (default 8)")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto", help="the service's --precision")
    args = parser.parse_args()
    if min(args.requests, args.concurrency, args.burst, args.queue, args.workers, args.frames) < 1:
        parser.error("every count must be >= 1")
    return args


def main() -> None:
    args = parse_args()
    print(f"load average before: {load()}")
    with tempfile.TemporaryDirectory(prefix="serve-load-") as folder:
        frames = write_grey_frames(Path(folder), args.frames)
        port = free_port()
        server = start_service(args.model, port, args.queue, args.workers, args.precision)
        url = f"http://127.0.0.1:{port}/v1/segment"
        try:
            model = requests.get(f"http://127.0.0.1:{port}/v1/model", timeout=10).json()
            print(f"model {model['file']} ({model['choice']}); queue {args.queue}, workers {args.workers}")
            warm, _ = run_load(url, frames, len(frames), 1)
            memory = {"after warm-up": rss_mb(server.pid)}
            steady: list[Reply] = []
            burst: list[Reply] = []
            for number in (1, 2, 3):
                if number == 3:  # the burst, then a last steady pass: memory after it shows what the burst left
                    burst, seconds = run_load(url, frames, args.burst, args.burst)
                    memory["after the burst"] = rss_mb(server.pid)
                    print(describe(f"burst ({args.burst} at once, queue {args.queue})", burst, seconds))
                    refused = [reply for reply in burst if reply.status == 503]
                    if refused:
                        print(f"burst: {len(refused)} refused at once (503, Retry-After {refused[0].retry_after} s), "
                              f"median {1000 * statistics.median(r.seconds for r in refused):.0f} ms to answer")
                replies, seconds = run_load(url, frames, args.requests, args.concurrency)
                steady += replies
                memory[f"after pass {number}"] = rss_mb(server.pid)
                print(describe(f"steady pass {number} (concurrency {args.concurrency})", replies, seconds))
        finally:
            server.terminate()
            server.wait(timeout=60)
    print("server RSS, MiB: " + ", ".join(f"{name} {value:.0f}" for name, value in memory.items()))
    print(f"RSS growth from pass 1: {memory['after pass 2'] - memory['after pass 1']:+.1f} MiB after pass 2, "
          f"{memory['after pass 3'] - memory['after pass 1']:+.1f} MiB after the burst and pass 3")
    print(f"load average after: {load()}")
    unexpected = [reply for reply in warm + steady if reply.status != 200] + \
                 [reply for reply in burst if reply.status not in (200, 503)]
    if unexpected:
        print(f"FAILED: {len(unexpected)} unexpected statuses: "
              f"{dict(collections.Counter(reply.status for reply in unexpected))}")
        sys.exit(1)


if __name__ == "__main__":
    main()
