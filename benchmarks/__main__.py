"""`make bench`: run every benchmarks/bench_*.py; each writes benchmarks/results/<name>.json.

Each benchmark runs in its own interpreter: one that changes settings, databases or the heap
(a 10M-row load, a gunicorn it started) must not slow or break the next one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    scripts = sorted(HERE.glob("bench_*.py"))
    wanted = sys.argv[1:]
    # `python -m benchmarks bookings` (or bench_bookings) runs that one only.
    selected = [
        s for s in scripts if not wanted or {s.stem, s.stem.removeprefix("bench_")} & set(wanted)
    ]
    failed = []
    for script in selected:
        print(f"== {script.stem}", flush=True)
        # Our own scripts, found by glob in this directory.
        module = f"benchmarks.{script.stem}"
        done = subprocess.run([sys.executable, "-m", module], cwd=HERE.parent, check=False)  # noqa: S603
        if done.returncode != 0:
            failed.append(script.stem)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
