"""Summarise a py-spy ``--format raw`` profile (collapsed stacks): where the time goes.

    python -m bench.profiles bench/out/work/profile-import.txt --top 25

Prints the functions with the most samples on-CPU at the top of the stack (self) and
anywhere in it (inclusive), as shares of all samples.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Final

_LOCATION: Final = re.compile(r" \((?P<file>[^()]*?)(?::\d+)?\)$")


def _frame(raw: str) -> str:
    """``name (path/to/file.py:12)`` as ``name (file.py)``: lines merged."""
    match = _LOCATION.search(raw)
    if match is None:
        return raw
    file = match.group("file")
    for marker in ("site-packages/", "/work/main/"):
        if marker in file:
            file = file.split(marker, 1)[1]
    return f"{raw[: match.start()]} ({file})"


def summarise(path: Path) -> tuple[int, Counter[str], Counter[str]]:
    """Total samples, self samples by function, inclusive samples by function."""
    total = 0
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame(f) for f in stack.split(";")]
        total += count
        own[frames[-1]] += count
        for name in set(frames):
            inclusive[name] += count
    return total, own, inclusive


def main() -> int:
    """Print the summary."""
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    args.add_argument("profile", type=Path)
    args.add_argument("--top", type=int, default=25)
    options = args.parse_args()
    total, own, inclusive = summarise(options.profile)
    if total == 0:
        sys.stderr.write("no samples\n")
        return 1
    out = sys.stdout
    out.write(f"{total} samples\n\nself:\n")
    for name, count in own.most_common(options.top):
        out.write(f"  {100 * count / total:5.1f}%  {name}\n")
    out.write("\ninclusive:\n")
    for name, count in inclusive.most_common(options.top * 2):
        out.write(f"  {100 * count / total:5.1f}%  {name}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
