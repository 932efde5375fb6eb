"""What the build benchmarks share: a CPU clock for the build profile and
the old-against-new table of stage CPU seconds. No package imports here, so
a child process may pair it with any version of the package."""

import statistics
import time


class CpuClock:
    """`time` for build_profile with every clock reading CPU time."""
    perf_counter = staticmethod(time.process_time)
    process_time = staticmethod(time.process_time)


def print_stage_table(old: list[dict], new: list[dict]) -> None:
    """Median CPU seconds per stage of the `old` and `new` profiles
    (`BuildProfile.as_dict()` of each round), their ratio and MB of text per
    CPU-second; stages in build order (the order each profile lists them)."""
    megabytes = new[0]["text_megabytes"]
    print(f"{megabytes:.2f} MB of text; medians of {len(new)} rounds; CPU "
          "seconds (time.process_time); MB/CPU-s = MB of text per CPU-second "
          "of the stage")
    print(f"{'stage':<10} {'old s':>8} {'new s':>8} {'old/new':>8} "
          f"{'old MB/CPU-s':>13} {'new MB/CPU-s':>13}")
    stages = list(dict.fromkeys(s for r in old + new for s in r["stages"]))
    rows = [(s, lambda r, s=s: r["stages"].get(s, {}).get("seconds", 0.0))
            for s in stages] + [("total", lambda r: r["cpu_seconds"])]
    for name, seconds in rows:
        old_s, new_s = (statistics.median(seconds(r) for r in runs)
                        for runs in (old, new))
        print(f"{name:<10} {old_s:>8.2f} {new_s:>8.2f} "
              f"{old_s / new_s if new_s else float('nan'):>8.1f} "
              f"{megabytes / old_s if old_s else float('nan'):>13.2f} "
              f"{megabytes / new_s if new_s else float('nan'):>13.2f}")
