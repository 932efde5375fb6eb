"""CPU seconds per build stage: this tree against an earlier commit's code.

Extracts `--baseline` (a commit of this repository, `git archive`) into a
temporary folder, then builds the same input with both trees, alternately
(A B A B ...), each build in a child process with that tree first on
PYTHONPATH (two versions of one package cannot share a process). Each child
makes a small warm-up build, then the measured one, with the build profile's
clocks switched to `time.process_time` (CPU seconds of the process, so other
load on the machine inflates them less than wall time), and reports the
profile and the SHA-256 of each record file. Prints each stage's median CPU
seconds over `--rounds`, MB of text per CPU-second, and whether both trees
wrote the same records byte for byte.

    # Run on an idle machine; under load the figures are only indicative.
    # The study's corpus and vocab (under tools/study.py's --runs_dir):
    python tools/bench_vs_commit.py \\
        --baseline=14dbb8a --input_files='runs/study/corpus/pretrain-*.txt' \\
        --vocab_file=runs/study/data/vocab.txt --rounds=3

Not a test (pytest collects `test_*.py` only): it takes minutes.
"""

import argparse
import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile

import bench_table

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TREES = ("baseline", "current")


def child(args) -> None:
    """One warm-up and one measured build; prints a JSON line."""
    from token_dropping.data import build_profile  # pylint: disable=C0415
    from token_dropping.data import PrepareDataConfig  # pylint: disable=C0415
    from token_dropping.data import build_pretraining_data  # pylint: disable=C0415
    config = PrepareDataConfig(input_files=args.input_files,
                               vocab_file=args.vocab_file,
                               whole_word_masking=args.whole_word_masking)
    build_profile.time = bench_table.CpuClock
    warm_up = os.path.join(args.output_dir, "warm-up")
    build_pretraining_data(dataclasses.replace(config, max_documents=50),
                           warm_up)
    shutil.rmtree(warm_up)
    measured = os.path.join(args.output_dir, "measured")
    profile = build_profile.BuildProfile()
    build_pretraining_data(config, measured, profile=profile)
    digests = {}
    for name in sorted(os.listdir(measured)):
        if name.endswith(".tfrecord"):
            with open(os.path.join(measured, name), "rb") as f:
                digests[name] = hashlib.sha256(f.read()).hexdigest()
    shutil.rmtree(measured)
    print("RESULT " + json.dumps({"profile": profile.as_dict(),
                                  "digests": digests}))


def _extract(commit: str, directory: str) -> None:
    archive = subprocess.run(["git", "-C", ROOT, "archive", commit],
                             capture_output=True, check=True).stdout
    with tempfile.TemporaryFile() as f:
        f.write(archive)
        f.seek(0)
        with tarfile.open(fileobj=f) as tar:
            tar.extractall(directory, filter="data")


def _run_child(tree_root: str, output_dir: str, args) -> dict:
    command = [sys.executable, os.path.abspath(__file__), "--child",
               f"--input_files={args.input_files}",
               f"--vocab_file={args.vocab_file}",
               f"--output_dir={output_dir}"] + (
                   ["--whole_word_masking"] if args.whole_word_masking else [])
    env = dict(os.environ, PYTHONPATH=tree_root, TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run(command, env=env, capture_output=True, text=True,
                            check=False)
    lines = [line for line in result.stdout.splitlines()
             if line.startswith("RESULT ")]
    if result.returncode or not lines:
        sys.stderr.write(result.stderr[-3000:])
        raise SystemExit(f"the build with {tree_root} failed")
    return json.loads(lines[-1][len("RESULT "):])


def _commit(name: str) -> str:
    """`name` if it names a commit of this repository (argparse's type)."""
    known = subprocess.run(
        ["git", "-C", ROOT, "rev-parse", "--verify", "--quiet",
         f"{name}^{{commit}}"], capture_output=True, check=False)
    if known.returncode:
        raise argparse.ArgumentTypeError(
            f"{name!r} is not a commit of this repository ({ROOT}); give a "
            "commit id, tag or branch that `git log` shows")
    return name


def _rounds(text: str) -> int:
    """`text` as a number of rounds, at least 1 (argparse's type)."""
    if not text.isdecimal() or int(text) < 1:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of rounds (a whole number, at least 1)")
    return int(text)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", type=_commit, default="14dbb8a")
    parser.add_argument("--input_files", required=True)
    parser.add_argument("--vocab_file", required=True)
    parser.add_argument("--rounds", type=_rounds, default=3)
    parser.add_argument("--whole_word_masking", action="store_true")
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--output_dir")
    args = parser.parse_args(argv)
    if args.child:
        child(args)
        return
    work = tempfile.mkdtemp(prefix="bench-vs-commit-")
    try:
        roots = {"baseline": os.path.join(work, "baseline"), "current": ROOT}
        _extract(args.baseline, roots["baseline"])
        measured = {tree: [] for tree in TREES}
        digests = {}
        for round_index in range(args.rounds):
            for tree in TREES:
                result = _run_child(roots[tree], os.path.join(
                    work, f"{tree}-{round_index}"), args)
                measured[tree].append(result["profile"])
                digests[tree] = result["digests"]
                print(f"round {round_index} {tree}: "
                      f"{result['profile']['cpu_seconds']:.2f} CPU s",
                      flush=True)
    finally:
        shutil.rmtree(work)
    print(f"baseline: commit {args.baseline}; current: {ROOT}")
    bench_table.print_stage_table(measured["baseline"], measured["current"])
    print("records identical:", digests["baseline"] == digests["current"],
          f"({len(digests['current'])} files)")


if __name__ == "__main__":
    main()
