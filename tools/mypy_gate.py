"""The mypy gate of .ci/run: the whole package against a recorded baseline that may only shrink.

    python tools/mypy_gate.py                          # the gate (exit 1 when it fails)
    python tools/mypy_gate.py --update                 # shrink the baselines to what is left
    python tools/mypy_gate.py --accept-new "REASON"    # record new errors too (files moved, say)

mypy runs with the `[tool.mypy]` settings of pyproject.toml. Its errors are compared with
tools/mypy-baseline.txt, one line per file, error code and message (without line numbers, so an
edit elsewhere in a file does not move the gate) with how many times it occurs. The gate fails

- on any error beyond the baseline (each is printed, with its line);
- on any error in a strict package (the `[[tool.mypy.overrides]]` that disallow untyped defs:
  domain, trading, store): they have no baseline and never get one;
- when errors have gone and the baseline still counts them: `--update` shrinks it, so a fixed
  error cannot come back unseen.

`# type: ignore` comments in src/ are held to the same rule: each names its error code, and
each carries its reason after it (`# type: ignore[code]  # why`); the ones without a reason are
counted per file in tools/type-ignore-baseline.txt, which may only shrink (none in a strict
package). mypy's own `warn_unused_ignores` reports the stale ones.

`--update` never adds an entry. `--accept-new REASON` is for the rare change that moves errors
rather than makes them (files moved to another package): it records every current error and
reasonless ignore, and writes the reason with the count into the baseline's header, where review
sees it. It still refuses errors in a strict package and bare `# type: ignore`.
"""

from __future__ import annotations

import argparse
import io
import re
import subprocess
import sys
import tokenize
import tomllib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parent.parent
BASELINE = ROOT / "tools" / "mypy-baseline.txt"
IGNORE_BASELINE = ROOT / "tools" / "type-ignore-baseline.txt"
SRC = ROOT / "src"

# file:line: error: message  [code]   (mypy without --pretty, without column numbers)
ERROR_LINE = re.compile(
    r"^(?P<file>[^:\s][^:]*):(?P<line>\d+): error: (?P<message>.*?)  \[(?P<code>[a-z0-9-]+)\]$"
)
# an error's key in the baseline: `file: [code] ×N message`
BASELINE_LINE = re.compile(r"^(?P<file>\S+): \[(?P<code>[a-z0-9-]+)\] ×(?P<count>\d+) (?P<message>.*)$")
IGNORE_BASELINE_LINE = re.compile(r"^(?P<file>\S+): ×(?P<count>\d+)$")
TYPE_IGNORE = re.compile(r"#\s*type:\s*ignore(?P<codes>\[[^\]]*\])?(?P<rest>.*)$")
LINE_NUMBERS = re.compile(r"\bline \d+\b")
T = TypeVar("T")


@dataclass(frozen=True, order=True)
class Key:
    """An error without its line: where, which check, what it says."""

    file: str
    code: str
    message: str

    def show(self, count: int) -> str:
        return f"{self.file}: [{self.code}] ×{count} {self.message}"


@dataclass(frozen=True)
class Found:
    key: Key
    line: int

    def show(self) -> str:
        return f"{self.key.file}:{self.line}: error: {self.key.message}  [{self.key.code}]"


# -- mypy's errors -------------------------------------------------------------------------------


def parse_mypy(output: str) -> list[Found]:
    """The errors in mypy's output (notes and the summary left out); line numbers inside a
    message ("already defined on line 19") are made `line N` too."""
    found = []
    for raw in output.splitlines():
        m = ERROR_LINE.match(raw.strip())
        if m is None:
            continue
        message = LINE_NUMBERS.sub("line N", m["message"])
        found.append(Found(Key(m["file"].replace("\\", "/"), m["code"], message), int(m["line"])))
    return found


def run_mypy() -> list[Found]:
    """mypy on the package as pyproject.toml configures it. Exits 1 with mypy's output when mypy
    itself could not run (a crash, a bad setting)."""
    cmd = [sys.executable, "-m", "mypy", "--no-pretty", "--no-error-summary", "--show-error-codes"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode not in (0, 1):
        sys.stderr.write(done.stdout + done.stderr)
        sys.exit(f"mypy could not run (exit {done.returncode}): see above")
    found = parse_mypy(done.stdout)
    if done.returncode == 1 and not found:
        sys.stderr.write(done.stdout + done.stderr)
        sys.exit("mypy failed but printed no error this gate can read: see above")
    return found


def read_baseline(path: Path) -> Counter[Key]:
    counts: Counter[Key] = Counter()
    if not path.exists():
        return counts
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not raw.strip() or raw.startswith("#"):
            continue
        m = BASELINE_LINE.match(raw)
        if m is None:
            sys.exit(f"{path.relative_to(ROOT)}:{number}: not a baseline line: {raw!r}")
        counts[Key(m["file"], m["code"], m["message"])] += int(m["count"])
    return counts


# -- strict packages ---------------------------------------------------------------------------


def strict_prefixes(pyproject: Path = ROOT / "pyproject.toml") -> tuple[str, ...]:
    """The source paths of the modules `[[tool.mypy.overrides]]` makes strict (those that
    disallow untyped defs): `trii_term.domain.*` → `src/trii_term/domain/`."""
    config = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    prefixes: set[str] = set()
    for override in config.get("tool", {}).get("mypy", {}).get("overrides", []):
        if not override.get("disallow_untyped_defs"):
            continue
        modules = override["module"]
        for module in [modules] if isinstance(modules, str) else modules:
            path = "src/" + module.removesuffix(".*").replace(".", "/")
            prefixes.update((path + "/", path + ".py"))
    return tuple(sorted(prefixes))


def in_strict(file: str, prefixes: Sequence[str]) -> bool:
    return any(file == p or file.startswith(p) for p in prefixes if p.endswith("/")) or file in prefixes


# -- `# type: ignore` comments ----------------------------------------------------------------


@dataclass(frozen=True)
class Ignore:
    file: str
    line: int
    codes: str  # "" for a bare `# type: ignore`
    reason: str

    def show(self) -> str:
        return f"{self.file}:{self.line}: # type: ignore{self.codes}"


def scan_ignores(text: str, file: str) -> list[Ignore]:
    """Every `# type: ignore` comment in a Python source (comments only, not strings), with its
    codes and the reason written after it (`# type: ignore[attr-defined]  # why`)."""
    found = []
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type != tokenize.COMMENT:
            continue
        m = TYPE_IGNORE.search(tok.string)
        if m is None:
            continue
        rest = m["rest"].strip()
        reason = rest.lstrip("#").strip() if rest.startswith("#") else ""
        found.append(Ignore(file, tok.start[0], m["codes"] or "", reason))
    return found


def source_ignores() -> list[Ignore]:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        found += scan_ignores(path.read_text(encoding="utf-8"), path.relative_to(ROOT).as_posix())
    return found


def read_ignore_baseline(path: Path) -> Counter[str]:
    counts: Counter[str] = Counter()
    if not path.exists():
        return counts
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not raw.strip() or raw.startswith("#"):
            continue
        m = IGNORE_BASELINE_LINE.match(raw)
        if m is None:
            sys.exit(f"{path.relative_to(ROOT)}:{number}: not a baseline line: {raw!r}")
        counts[m["file"]] += int(m["count"])
    return counts


# -- the comparison ---------------------------------------------------------------------------


@dataclass
class Verdict:
    new: list[Found]  # errors beyond the baseline (every line of each key that grew)
    strict: list[Found]  # errors in a strict package
    gone: Counter[Key]  # baselined errors that are no more
    bare: list[Ignore]  # `# type: ignore` without an error code
    new_unexplained: dict[str, list[Ignore]]  # files with more reasonless ignores than recorded
    strict_unexplained: list[Ignore]  # reasonless ignores in a strict package
    gone_unexplained: Counter[str]  # reasonless ignores recorded that are no more

    @property
    def failed(self) -> bool:
        return bool(
            self.new or self.strict or self.gone or self.bare or self.new_unexplained
            or self.strict_unexplained or self.gone_unexplained
        )  # fmt: skip


def judge(
    found: Sequence[Found],
    baseline: Counter[Key],
    ignores: Sequence[Ignore],
    ignore_baseline: Counter[str],
    prefixes: Sequence[str],
) -> Verdict:
    now = Counter(f.key for f in found)
    grew = {k for k, n in now.items() if n > baseline.get(k, 0) and not in_strict(k.file, prefixes)}
    unexplained = [i for i in ignores if i.codes and not i.reason]
    per_file = Counter(i.file for i in unexplained if not in_strict(i.file, prefixes))
    return Verdict(
        new=[f for f in found if f.key in grew],
        strict=[f for f in found if in_strict(f.key.file, prefixes)],
        gone=Counter({k: n - now.get(k, 0) for k, n in baseline.items() if n > now.get(k, 0)}),
        bare=[i for i in ignores if not i.codes],
        new_unexplained={
            file: [i for i in unexplained if i.file == file]
            for file, n in per_file.items()
            if n > ignore_baseline.get(file, 0)
        },
        strict_unexplained=[i for i in unexplained if in_strict(i.file, prefixes)],
        gone_unexplained=Counter(
            {f: n - per_file.get(f, 0) for f, n in ignore_baseline.items() if n > per_file.get(f, 0)}
        ),
    )


def report(v: Verdict, baseline_total: int, found_total: int) -> list[str]:
    lines: list[str] = []
    if v.strict:
        lines.append("errors in a strict package (domain, trading, store have no baseline): fix them")
        lines += ["  " + f.show() for f in v.strict]
    if v.new:
        lines.append("errors the baseline does not have (fix them; every line of each grown entry shown):")
        lines += ["  " + f.show() for f in v.new]
    if v.bare:
        lines.append("`# type: ignore` without an error code: name it, `# type: ignore[code]  # why`")
        lines += ["  " + i.show() for i in v.bare]
    if v.strict_unexplained:
        lines.append("`# type: ignore` without a reason in a strict package: write why after it")
        lines += ["  " + i.show() for i in v.strict_unexplained]
    if v.new_unexplained:
        lines.append("`# type: ignore` without a reason, beyond the baseline: `# type: ignore[code]  # why`")
        for found in v.new_unexplained.values():
            lines += ["  " + i.show() for i in found]
    if v.gone or v.gone_unexplained:
        lines.append("fixed and still counted: the baseline can shrink: python tools/mypy_gate.py --update")
        lines += ["  " + k.show(n) for k, n in sorted(v.gone.items())]
        lines += [f"  {f}: ×{n} reasonless # type: ignore" for f, n in sorted(v.gone_unexplained.items())]
    status = "FAILED" if v.failed else "passed"
    lines.append(f"mypy gate {status}: {found_total} errors, baseline {baseline_total}")
    return lines


# -- writing the baselines ------------------------------------------------------------------


def shrunk(baseline: Counter[T], now: Counter[T]) -> Counter[T]:
    """What `--update` writes: each entry at most as often as it is recorded, never a new one."""
    return Counter({k: min(n, now.get(k, 0)) for k, n in baseline.items() if now.get(k, 0) > 0})


def render_baseline(counts: Counter[Key], header: Iterable[str]) -> str:
    lines = [f"# {h}" if h else "#" for h in header]
    lines += [k.show(n) for k, n in sorted(counts.items()) if n > 0]
    return "\n".join(lines) + "\n"


def render_ignore_baseline(counts: Counter[str], header: Iterable[str]) -> str:
    lines = [f"# {h}" if h else "#" for h in header]
    lines += [f"{f}: ×{n}" for f, n in sorted(counts.items()) if n > 0]
    return "\n".join(lines) + "\n"


def kept_history(path: Path) -> list[str]:
    """The `accepted:` lines of a baseline's header (why it ever grew), kept across rewrites."""
    if not path.exists():
        return []
    return [
        raw[2:] for raw in path.read_text(encoding="utf-8").splitlines() if raw.startswith("# accepted: ")
    ]


MYPY_HEADER = (
    "The mypy errors trii-term still has, outside the strict packages (tools/mypy_gate.py).",
    "One line per file, error code and message, with how many times it occurs. It may only shrink:",
    "fix an error, then `python tools/mypy_gate.py --update`. Never edit it by hand.",
)
IGNORE_HEADER = (
    "`# type: ignore` comments without a reason after them, per file (tools/mypy_gate.py).",
    "It may only shrink: write the reason (`# type: ignore[code]  # why`) or remove the ignore.",
)


def write_baselines(
    errors: Counter[Key], unexplained: Counter[str], accepted: str | None, added: tuple[int, int]
) -> None:
    history = kept_history(BASELINE)
    if accepted is not None:
        day = datetime.now(UTC).date().isoformat()
        history.append(f"accepted: {day}: +{added[0]} errors, +{added[1]} reasonless ignores: {accepted}")
    BASELINE.write_text(render_baseline(errors, [*MYPY_HEADER, *history]), encoding="utf-8")
    IGNORE_BASELINE.write_text(render_ignore_baseline(unexplained, IGNORE_HEADER), encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--update", action="store_true", help="shrink the baselines to what is left")
    group.add_argument(
        "--accept-new", metavar="REASON", help="record new errors too, with the reason, in the header"
    )
    args = parser.parse_args(argv)

    prefixes = strict_prefixes()
    found = run_mypy()
    baseline = read_baseline(BASELINE)
    ignores = source_ignores()
    ignore_baseline = read_ignore_baseline(IGNORE_BASELINE)
    verdict = judge(found, baseline, ignores, ignore_baseline, prefixes)

    if not (args.update or args.accept_new is not None):
        for line in report(verdict, sum(baseline.values()), len(found)):
            print(line)
        return 1 if verdict.failed else 0

    refused = verdict.strict or verdict.bare or verdict.strict_unexplained
    if refused or (args.update and (verdict.new or verdict.new_unexplained)):
        for line in report(verdict, sum(baseline.values()), len(found)):
            print(line)
        why = (
            "errors in a strict package and bare ignores are never recorded"
            if refused
            else "--update only removes entries (--accept-new REASON records new ones, in review's sight)"
        )
        print(f"the baselines were not changed: {why}", file=sys.stderr)
        return 1
    now = Counter(f.key for f in found)
    unexplained = Counter(i.file for i in ignores if i.codes and not i.reason)
    if args.update:
        errors, kept = shrunk(baseline, now), shrunk(ignore_baseline, unexplained)
        added = (0, 0)
    else:
        errors, kept = now, unexplained
        added = (sum((now - baseline).values()), sum((unexplained - ignore_baseline).values()))
    write_baselines(errors, kept, args.accept_new, added)
    print(
        f"baseline: {sum(baseline.values())} -> {sum(errors.values())} mypy errors, "
        f"{sum(ignore_baseline.values())} -> {sum(kept.values())} reasonless ignores"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
