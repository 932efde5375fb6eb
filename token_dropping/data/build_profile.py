"""BuildProfile: where a prepare_data build spends its time, stage by stage.

`tools/prepare_data.py --profile` passes one to the build and prints its table.
Stages are timed exclusively: entering a stage pauses the one around it, so the
seconds add up to the build's wall time. Throughput is megabytes (10**6 bytes)
of the text read (UTF-8, after cleaning, counted once) per second; "per core"
divides by the CPU seconds of the whole process (all its threads), which is
what a core-count plan needs. Measurements are plain data (`as_dict`);
`format_table` turns them into text.

Example:
>>> profile = BuildProfile()
>>> info = build_pretraining_data(config, "/tmp/out", profile=profile)
>>> print(format_table(profile.as_dict()))
"""

import contextlib
import time

# In build order. "read" is reading and cleaning text (and routing documents);
# "write" is the shuffle buffer and the TFRecord files.
# "workers" is the whole of a `num_workers` > 1 build's worker processes and
# the parent's merge of their records; their own stages are not split out.
STAGES = ("scan", "read", "vocab", "tokenize", "pack", "mask", "serialize",
          "write", "workers", "finish")
_MB = 1e6


class BuildProfile:
    """Wall seconds per stage of one build, and the text bytes it read."""

    def __init__(self):
        self.seconds = dict.fromkeys(STAGES, 0.0)
        self.text_bytes = 0
        self.built = False
        self._stack = []
        self._mark = 0.0
        self._start = None
        self._wall = self._cpu = 0.0
        self._worker_cpu = 0.0

    def start(self) -> None:
        self._start = (time.perf_counter(), time.process_time())

    def stop(self) -> None:
        """Ends the build's clock; stages left open are closed."""
        while self._stack:
            self.pop()
        wall, cpu = self._start
        self._wall = time.perf_counter() - wall
        self._cpu = time.process_time() - cpu + self._worker_cpu
        self.built = True

    def push(self, stage: str) -> None:
        now = time.perf_counter()
        if self._stack:
            self.seconds[self._stack[-1]] += now - self._mark
        self._stack.append(stage)
        self._mark = now

    def pop(self) -> None:
        now = time.perf_counter()
        self.seconds[self._stack.pop()] += now - self._mark
        self._mark = now

    @contextlib.contextmanager
    def stage(self, name: str):
        self.push(name)
        try:
            yield
        finally:
            self.pop()

    def timed(self, iterable, stage: str):
        """Yields from `iterable`, charging the time to produce each to
        `stage`."""
        iterator = iter(iterable)
        while True:
            self.push(stage)
            try:
                item = next(iterator)
            except StopIteration:
                return
            finally:
                self.pop()
            yield item

    def count_text(self, sentences) -> None:
        text = "".join(sentences)  # UTF-8 lengths add up.
        self.text_bytes += len(text) if text.isascii() else len(
            text.encode("utf-8"))

    def add_worker(self, text_bytes: int, cpu_seconds: float) -> None:
        """Counts a worker process's text and CPU time into the build's."""
        self.text_bytes += text_bytes
        self._worker_cpu += cpu_seconds

    def as_dict(self) -> dict:
        """The measurements: totals and, per stage, seconds, share, MB/s."""
        megabytes = self.text_bytes / _MB
        stages = {
            name: {"seconds": seconds,
                   "share": seconds / self._wall if self._wall else 0.0,
                   "mb_per_second": megabytes / seconds if seconds else None}
            for name, seconds in self.seconds.items() if seconds > 0}
        return {
            "built": self.built,
            "text_bytes": self.text_bytes,
            "text_megabytes": megabytes,
            "wall_seconds": self._wall,
            "cpu_seconds": self._cpu,
            "mb_per_second": megabytes / self._wall if self._wall else None,
            "mb_per_cpu_second": megabytes / self._cpu if self._cpu else None,
            "stages": stages,
        }


class _NoProfile:
    """What the build uses when nobody profiles: every call does nothing."""

    def start(self):
        pass

    stop = start

    def push(self, stage):
        pass

    def pop(self):
        pass

    def stage(self, name):
        return contextlib.nullcontext()

    def timed(self, iterable, stage):
        return iterable

    def count_text(self, sentences):
        pass

    def add_worker(self, text_bytes, cpu_seconds):
        pass


NO_PROFILE = _NoProfile()


def format_table(measured: dict) -> str:
    """The table `tools/prepare_data.py --profile` prints."""
    if not measured["built"]:
        return ("profile: nothing was built (the dataset in the output "
                "directory was reused); profile a build into a new "
                "--output_dir.")
    lines = [
        f"profile: {measured['text_megabytes']:.2f} MB of text in "
        f"{measured['wall_seconds']:.1f} s wall, "
        f"{measured['cpu_seconds']:.1f} s CPU: "
        f"{measured['mb_per_second']:.2f} MB/s, "
        f"{measured['mb_per_cpu_second']:.2f} MB per CPU-second (per core)",
        f"{'stage':<10} {'seconds':>8} {'share':>6} {'MB/s':>9}",
    ]
    for name, stage in measured["stages"].items():
        rate = stage["mb_per_second"]
        lines.append(f"{name:<10} {stage['seconds']:>8.2f} "
                     f"{stage['share']:>6.1%} "
                     f"{'' if rate is None else f'{rate:.2f}':>9}")
    return "\n".join(lines)
