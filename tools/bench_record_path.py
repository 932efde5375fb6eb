"""CPU seconds per build stage: per-sequence vs batch masking and serialization.

Builds the same input twice per round in one process, interleaved (A B A B):
once with the per-sequence path the builder used before
(`data_testdata/per_sequence.py`, one `mask` call and one `tf.train.Example`
per record) and once with today's batch path, and prints each stage's CPU
seconds (the build profile's clock switched to `time.process_time`, so other
jobs on the machine do not inflate them) and MB of text per CPU-second, the
medians over rounds (after a small warm-up build of each), and whether both
paths wrote the same records.

    PYTHONPATH=$PWD/tests python tools/bench_record_path.py \
        --input_files='runs/study/corpus/pretrain-*.txt' \
        --vocab_file=runs/study/data/vocab.txt --rounds=2

Not a test (pytest collects `test_*.py` only): it takes minutes.
"""

import argparse
import dataclasses
import hashlib
import os
import shutil
import tempfile

import bench_table
from data_testdata import per_sequence
from token_dropping.data import build_profile
from token_dropping.data import PrepareDataConfig, build_pretraining_data
from token_dropping.data import split_writer

PATHS = ("per_sequence", "batch")


def _build(config, output_dir, path):
    batch_write = split_writer.SplitWriter._write_static
    if path == "per_sequence":
        split_writer.SplitWriter._write_static = per_sequence.write_static
    profile = build_profile.BuildProfile()
    try:
        build_pretraining_data(config, output_dir, profile=profile)
    finally:
        split_writer.SplitWriter._write_static = batch_write
    digests = {name: hashlib.sha256(open(os.path.join(output_dir, name),
                                         "rb").read()).hexdigest()
               for name in sorted(os.listdir(output_dir))
               if name.endswith(".tfrecord")}
    return profile.as_dict(), digests


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--input_files", required=True)
    parser.add_argument("--vocab_file", required=True)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--whole_word_masking", action="store_true")
    args = parser.parse_args()
    config = PrepareDataConfig(input_files=args.input_files,
                               vocab_file=args.vocab_file,
                               whole_word_masking=args.whole_word_masking)
    build_profile.time = bench_table.CpuClock
    measured = {path: [] for path in PATHS}
    digests = {}
    work = tempfile.mkdtemp(prefix="bench-record-path-")
    try:
        # Warm-up, not measured: TensorFlow's tokenizer, numpy's tables.
        for path in PATHS:
            _build(dataclasses.replace(config, max_documents=50),
                   os.path.join(work, f"warm-up-{path}"), path)
        for round_index in range(args.rounds):
            for path in PATHS:
                output_dir = os.path.join(work, f"{path}-{round_index}")
                result, digests[path] = _build(config, output_dir, path)
                shutil.rmtree(output_dir)
                measured[path].append(result)
                print(f"round {round_index} {path}: "
                      f"{result['cpu_seconds']:.2f} CPU s", flush=True)
    finally:
        shutil.rmtree(work)
    bench_table.print_stage_table(measured["per_sequence"], measured["batch"])
    print("records identical:", digests["per_sequence"] == digests["batch"],
          f"({len(digests['batch'])} files)")


if __name__ == "__main__":
    main()
