"""`make bench`: run every benchmarks/bench_*.py; each writes benchmarks/results/<name>.json."""

from __future__ import annotations

import runpy
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
        sys.argv = [str(script)]  # each script parses its own (default) arguments
        try:
            runpy.run_path(str(script), run_name="__main__")
        except SystemExit as exc:  # a script's own `sys.exit(main())` ends that script only
            if exc.code not in (None, 0):
                failed.append(script.stem)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
