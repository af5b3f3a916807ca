"""A 500-symbol watchlist fed at 10 ticks/s per symbol: CPU and key-press-to-screen latency.

The real `trii-term` runs in tmux (a real terminal emulator), fed by a synthetic provider that is
installed the way a third-party plug-in is: a `trii_term.feeds` entry point. Each tick is a trade
and its quote (so 10 ticks/s/symbol = 10,000 events/s), and every event is also written to the
store by the batched writer, as in normal use.

- CPU: the process's user+system time over a steady window, as % of one core.
- Latency: press `j` (cursor down) and poll the terminal until the cursor marker `›` has moved.
  The poll itself costs a few ms (one `tmux capture-pane` each), so the figure is an upper bound.
  p95 is interpolated over at least 100 presses (fewer are refused).
- Memory: the process's resident set at the end of the steady window, and its peak.

Each measurement runs on a private tmux server (`tmux -L`, no user config), killed at the end.
Baseline, same run, alternating with the fed runs: the same app and watchlist with the feed idle
(0 ticks/s). Targets: key press to screen p95 < 100 ms, CPU < 60 % of one core.

    python bench/watchlist.py [--symbols 500] [--rate 10] [--seconds 10] [--presses 100]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def install_plugin(folder: Path) -> Path:
    """A dist-info with the entry point, next to the plug-in module: importlib.metadata finds it
    on PYTHONPATH exactly as it finds an installed package."""
    info = folder / "trii_bench_feed-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: trii-bench-feed\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[trii_term.feeds]\nbench = bench_feed:SyntheticFeed\n")
    shutil.copy(HERE / "plugin" / "bench_feed.py", folder / "bench_feed.py")
    return folder


SERVER = f"triibench{os.getpid()}"  # a private tmux server: never the user's
SWING = 40  # presses down, then as many up, so any watchlist of more rows can take them all


def tmux(*args: str, env: dict[str, str] | None = None) -> str:
    cmd = ["tmux", "-L", SERVER, "-f", "/dev/null", *args]
    return subprocess.run(cmd, capture_output=True, text=True, check=True, env=env).stdout


def screen(session: str) -> str:
    return tmux("capture-pane", "-p", "-t", session)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS_PER_SECOND  # utime + stime


def memory_mb(pid: int) -> tuple[float, float]:
    """(resident now, peak resident) in MB, from /proc."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def cursor_symbol(text: str) -> str | None:
    m = re.search(r"│›(S\d{3})\s", text)
    return m.group(1) if m else None


def measure(
    symbols: int, rate: float, seconds: float, presses: int, size: tuple[int, int]
) -> dict[str, float]:
    work = Path(tempfile.mkdtemp(prefix="trii-bench-watch-"))
    plugin = install_plugin(work / "plugin")
    names = ", ".join(f'"S{i:03d}"' for i in range(symbols))
    (work / "config.toml").write_text(f'[feed]\nprovider = "bench"\nsymbols = [{names}]\n')
    env = {
        **os.environ,
        "PYTHONPATH": f"{plugin}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        "TRII_BENCH_SYMBOLS": str(symbols),
        "TRII_BENCH_RATE": str(rate),
        "TERM": "xterm-256color",
    }
    session = "bench"
    cmd = f"exec {sys.executable} -m trii_term --config {work / 'config.toml'} --data-dir {work / 'data'}"
    tmux("new-session", "-d", "-s", session, "-x", str(size[0]), "-y", str(size[1]), cmd, env=env)
    socket = Path(tmux("display", "-p", "-t", session, "#{socket_path}").strip())
    try:
        pid = int(tmux("display", "-p", "-t", session, "#{pane_pid}").strip())
        deadline = time.time() + 30
        while cursor_symbol(screen(session)) != "S000":
            if time.time() > deadline:
                raise RuntimeError("the workstation never showed the watchlist:\n" + screen(session))
            time.sleep(0.1)
        time.sleep(2.0)  # settle: first store flushes, caches warm
        c0, t0 = cpu_seconds(pid), time.monotonic()
        time.sleep(seconds)
        cpu = (cpu_seconds(pid) - c0) / (time.monotonic() - t0)
        rss, peak = memory_mb(pid)
        status = screen(session).splitlines()[-2]
        rate_seen = re.search(r"([\d,]+) msg/s|([\d,]+)/s", status)
        latencies = []
        for i in range(presses):
            before = cursor_symbol(screen(session))
            t = time.perf_counter()
            tmux("send-keys", "-t", session, "j" if (i // SWING) % 2 == 0 else "k")  # down, then up
            while cursor_symbol(screen(session)) == before:
                if time.perf_counter() - t > 2:
                    raise RuntimeError("cursor did not move")
            latencies.append(time.perf_counter() - t)
            time.sleep(0.15)
        tmux("send-keys", "-t", session, "C-q")
        time.sleep(1.0)
        msgs = (
            float((rate_seen.group(1) or rate_seen.group(2)).replace(",", "")) if rate_seen else float("nan")
        )
        return {
            "cpu": cpu,
            "p50": statistics.median(latencies),
            "p95": statistics.quantiles(latencies, n=20)[-1],
            "msgs": msgs,
            "rss": rss,
            "peak": peak,
        }
    finally:
        subprocess.run(["tmux", "-L", SERVER, "kill-server"], capture_output=True)
        socket.unlink(missing_ok=True)  # (a server that ended with its last session leaves it)
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--symbols", type=int, default=500)
    ap.add_argument("--rate", type=float, default=10.0)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--presses", type=int, default=100)
    args = ap.parse_args()
    if shutil.which("tmux") is None:
        sys.exit("bench/watchlist.py needs tmux (apt install tmux)")
    if args.presses < 100:
        sys.exit("--presses: a p95 needs at least 100 samples")
    if args.symbols <= SWING:
        sys.exit(f"--symbols: at least {SWING + 1}, for the cursor to move {SWING} rows each way")
    print(f"load average at the start: {os.getloadavg()[0]:.2f}")
    for size in ((160, 50), (80, 24)):
        idle = measure(args.symbols, 0, args.seconds, args.presses, size)
        busy = measure(args.symbols, args.rate, args.seconds, args.presses, size)
        print(f"{size[0]}×{size[1]}, {args.symbols} symbols, {args.presses} presses each:")
        print(
            f"  baseline, feed idle:   CPU {idle['cpu']:.0%} of a core, key→screen p50 "
            f"{idle['p50'] * 1000:.0f} ms, p95 {idle['p95'] * 1000:.0f} ms, "
            f"RSS {idle['rss']:.0f} MB (peak {idle['peak']:.0f})"
        )
        print(
            f"  {args.rate:g} ticks/s/symbol ({busy['msgs']:,.0f} msg/s incl. quotes): CPU {busy['cpu']:.0%} "
            f"of a core, key→screen p50 {busy['p50'] * 1000:.0f} ms, p95 {busy['p95'] * 1000:.0f} ms, "
            f"RSS {busy['rss']:.0f} MB (peak {busy['peak']:.0f})"
        )
        ok = busy["cpu"] < 0.6 and busy["p95"] < 0.1
        print(f"  targets (< 60 % CPU, p95 < 100 ms): {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
