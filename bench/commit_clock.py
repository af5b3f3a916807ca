"""When rows became queryable, for the end-to-end benchmarks of the live feeds."""

from __future__ import annotations

import time

from trii_term.store.writer import StoreWriter


class CommitClock:
    """When each flush of the writer committed: `StoreWriter._drain` returns right after its
    transaction commits, so the time it returns is when those rows became queryable. Batches
    are written in arrival order, so a frame's rows are visible at the first commit whose
    running row count reaches the frame's own; its latency is that commit time - received_ns."""

    def __init__(self, writer: StoreWriter) -> None:
        self.commits: list[tuple[int, int]] = []  # (monotonic ns at commit, rows committed so far)
        drain = writer._drain

        def timed(con) -> bool:  # type: ignore[no-untyped-def]
            ok = drain(con)
            if ok:
                self.commits.append((time.monotonic_ns(), writer.stats.trades))
            return ok

        writer._drain = timed  # type: ignore[method-assign]

    def latencies_ms(self, arrivals: list[tuple[int, int]]) -> list[float]:
        out = []
        ci = 0
        for received, upto in arrivals:
            while self.commits[ci][1] < upto:
                ci += 1
            out.append((self.commits[ci][0] - received) / 1e6)
        return sorted(out)
