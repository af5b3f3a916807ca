"""Start-up: process start to the first painted watchlist row with a price, in a real pty.

Baseline, measured in the same run with the same harness, runs interleaved: a minimal Textual
app that paints one label (the floor any Textual program pays here). Targets: trii-term ≤ 500 ms
median, and ≤ 2.2 × the baseline's median. The temporary data dir is removed at the end.

    python bench/startup.py [--runs 9]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pty
import re
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ANSI = re.compile(rb"\x1b\[[0-9;?<>=]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)|\x1b[=>()][0-9A-Za-z]?")

BASELINE_APP = """
from textual.app import App
from textual.widgets import Label
class Hello(App):
    def compose(self):
        yield Label("AAPL 123.45 READY")
Hello().run()
"""


def time_to_paint(cmd: list[str], pattern: bytes, env: dict[str, str], timeout: float = 15.0) -> float:
    master, slave = pty.openpty()
    os.set_blocking(master, False)
    import fcntl
    import struct
    import termios

    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True, start_new_session=True
    )
    os.close(slave)
    seen = b""
    found = None
    deadline = start + timeout
    try:
        while time.perf_counter() < deadline:
            r, _, _ = select.select([master], [], [], 0.01)
            if r:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    break
                seen += chunk
                if re.search(pattern, ANSI.sub(b"", seen)):
                    found = time.perf_counter() - start
                    break
    finally:
        try:
            os.write(master, b"\x11")  # ctrl+q
            t_end = time.time() + 10
            while proc.poll() is None and time.time() < t_end:
                select.select([master], [], [], 0.05)
                with contextlib.suppress(OSError):
                    os.read(master, 65536)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            os.close(master)
    if found is None:
        raise RuntimeError(f"never painted: {ANSI.sub(b'', seen)[-400:]!r}")
    return found


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=9)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="trii-bench-startup-"))
    try:
        report(work, args.runs)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def report(work: Path, runs: int) -> None:
    load = os.getloadavg()[0]
    env = dict(os.environ, TERM="xterm-256color", COLORTERM="truecolor")
    exe = [sys.executable, "-m", "trii_term", "--data-dir", str(work), "--config", str(work / "none.toml")]
    baseline = [sys.executable, "-c", BASELINE_APP]
    # the first run creates the store and imports the shipped history: report it separately
    row = re.compile("AAPL\\s+(?:▲|▼)?\\s*\\d".encode())
    first = time_to_paint(exe, row.pattern, env)
    ours, base = [], []
    for _ in range(runs):
        base.append(time_to_paint(baseline, rb"AAPL 123\.45 READY", env))
        ours.append(time_to_paint(exe, row.pattern, env))
    mb, mo = statistics.median(base), statistics.median(ours)
    print(f"load average at the start: {load:.2f}")
    print(f"first run (creates the store, imports history): {first * 1000:.0f} ms")
    print(
        f"baseline, minimal Textual app: median {mb * 1000:.0f} ms  "
        f"[{min(base) * 1000:.0f}–{max(base) * 1000:.0f}]  n={runs}"
    )
    print(
        f"trii-term, first watchlist row with a price: median {mo * 1000:.0f} ms  "
        f"[{min(ours) * 1000:.0f}–{max(ours) * 1000:.0f}]  n={runs}"
    )
    met = mo <= 0.5 and mo / mb <= 2.2
    verdict = "met" if met else "NOT met"
    print(f"ratio trii-term / baseline: {mo / mb:.2f}   targets ≤ 500 ms and ≤ ×2.2: {verdict}")


if __name__ == "__main__":
    main()
