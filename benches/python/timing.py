"""The timing loop of the Python benchmarks (bench.py, and the OpenSSL
figures of benches/before-after.sh): calibrated batches, rounds alternating
between the candidates, the fastest batch mean kept."""

import time
from typing import Callable, List, Sequence, Tuple


def compare(candidates: Sequence[Tuple[str, Callable[[], object]]], quick: bool = False) -> List[float]:
    """Seconds per call of each candidate: calibrated batches of ~20 ms,
    rounds alternating between candidates, fastest batch mean kept."""
    batch = 0.02
    rounds = 3 if quick else 5
    batches = 2 if quick else 5
    loops = []
    for _, fn in candidates:
        n = 1
        while True:
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            took = time.perf_counter() - t0
            if took >= batch / 4:
                loops.append(max(1, int(batch / (took / n))))
                break
            n *= 4
    best = [float("inf")] * len(candidates)
    for _ in range(rounds):
        for i, (_, fn) in enumerate(candidates):
            n = loops[i]
            for _ in range(batches):
                t0 = time.perf_counter()
                for _ in range(n):
                    fn()
                per = (time.perf_counter() - t0) / n
                best[i] = min(best[i], per)
    return best
