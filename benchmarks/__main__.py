"""`make bench`: run every benchmarks/bench_*.py; each writes benchmarks/results/<name>.json."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    scripts = sorted(HERE.glob("bench_*.py"))
    selected = [s for s in scripts if not sys.argv[1:] or s.stem in sys.argv[1:]]
    for script in selected:
        print(f"== {script.stem}", flush=True)
        runpy.run_path(str(script), run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main())
