"""Prints criterion's median (and mean) for each benchmark of a group, from
the estimates it saved under target/criterion, so heft's figures can be
quoted as medians like those of `reference_engines.py`.

Criterion's `time:` line gives the mean over iterations, which the slow
outliers of a shared machine pull up. Run after the bench, e.g.

    cargo bench -p heft-benches --bench train_step
    python3 benches/scripts/criterion_medians.py train_step

Prints one line per benchmark: name, median and mean per iteration (us),
and iterations per second at the median.
"""

import json
import pathlib
import sys


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: criterion_medians.py GROUP (e.g. train_step)")
    root = pathlib.Path(__file__).resolve().parents[2] / "target" / "criterion" / sys.argv[1]
    files = sorted(root.glob("*/new/estimates.json"))
    if not files:
        sys.exit(f"no estimates under {root}: run the bench first")
    for f in files:
        est = json.loads(f.read_text())
        med = est["median"]["point_estimate"] / 1e3
        mean = est["mean"]["point_estimate"] / 1e3
        print(f"{f.parent.parent.name:45} median {med:10.2f} us   mean {mean:10.2f} us   {1e6 / med:12,.0f} /s")


if __name__ == "__main__":
    main()
