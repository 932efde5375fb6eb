"""Throughput of tools/prepare_data.py on >= 100 MB of real text, gathered now.

The machine has no network, so the text is what is installed: the Debian
documentation in /usr/share/doc (changelogs, copyright notices, READMEs;
`.gz` files decompressed) and the `.rst`, `.md`, `.txt` and `.py` files of
the Python packages in site-packages, read in sorted path order until
`--megabytes` are gathered. A file that is not strict UTF-8 or holds a NUL is
skipped. Each file becomes a document (its blank lines split it further) in
BERT's sentence_per_line layout, in shards of `--shard_megabytes` (workers
take one input file at a time) under a temporary folder that is removed at
the end: nothing is committed. Much of it is source code and changelogs, not
prose: lines are shorter than prose sentences, so this is a harder case for
the per-sentence costs than the docstring corpus.

Then `tools/prepare_data.py --profile` builds it once per `--num_workers`
value (each build into a fresh output directory, one after another) and the
profile tables are printed, with the gathered composition.

    # On an idle machine (the timing is meaningless under other load):
    python tools/bench_real_text.py \\
        --megabytes=110 --vocab_file=runs/study/data/vocab.txt \\
        --num_workers=1,2

    # A learned vocab from a bounded sample instead of a given one:
    ... tools/bench_real_text.py --megabytes=110 --num_workers=1,2 \\
        --vocab_size=30522 --vocab_max_sentences=200000

Not a test (pytest collects `test_*.py` only); `test_bench_real_text.py`
runs it on a tiny size.
"""

import argparse
import gzip
import os
import subprocess
import sys
import sysconfig
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PREPARE_DATA = os.path.join(ROOT, "tools", "prepare_data.py")
DOC_ROOT = "/usr/share/doc"
PACKAGE_SUFFIXES = (".rst", ".md", ".txt", ".py")
_MB = 1e6


def source_files(doc_root: str, packages_root: str):
    """(source name, path) of every candidate file, in a fixed order."""
    for name, root, suffixes in (("doc", doc_root, None),
                                 ("packages", packages_root,
                                  PACKAGE_SUFFIXES)):
        for directory, subdirectories, files in os.walk(root):
            subdirectories.sort()
            for file_name in sorted(files):
                path = os.path.join(directory, file_name)
                if os.path.islink(path) or not os.path.isfile(path):
                    continue
                if suffixes is None or file_name.endswith(suffixes):
                    yield name, path


def read_text(path: str) -> str | None:
    """The file as text (`.gz` decompressed), or None if it is not UTF-8
    text."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
        if path.endswith(".gz"):
            raw = gzip.decompress(raw)
        text = raw.decode("utf-8")
    except (OSError, EOFError, UnicodeDecodeError, gzip.BadGzipFile):
        return None
    return None if "\0" in text else text


def gather(output_dir: str, megabytes: float, shard_megabytes: float,
           doc_root: str = DOC_ROOT, packages_root: str | None = None) -> dict:
    """Writes >= `megabytes` of text into shards in `output_dir`.

    Returns:
        {"megabytes": total, "files": shard count, "sources": MB per source,
         "skipped": files skipped as not UTF-8 text}.
    """
    packages_root = packages_root or sysconfig.get_paths()["purelib"]
    target, shard_target = megabytes * _MB, shard_megabytes * _MB
    sizes, skipped, total, shard, shard_bytes = {}, 0, 0, None, 0
    shards = 0
    try:
        for source, path in source_files(doc_root, packages_root):
            if total >= target:
                break
            text = read_text(path)
            if text is None:
                skipped += 1
                continue
            document = "\n".join(line for line in text.splitlines()) + "\n\n"
            if shard is None or shard_bytes >= shard_target:
                if shard is not None:
                    shard.close()
                shard = open(os.path.join(output_dir,
                                          f"real-text-{shards:04d}.txt"),
                             "w", encoding="utf-8")
                shards, shard_bytes = shards + 1, 0
            num_bytes = len(document.encode("utf-8"))
            shard.write(document)
            shard_bytes += num_bytes
            total += num_bytes
            sizes[source] = sizes.get(source, 0) + num_bytes
    finally:
        if shard is not None:
            shard.close()
    if total < target:
        raise SystemExit(f"Only {total / _MB:.1f} MB of text found in "
                         f"{doc_root} and {packages_root}; ask for less than "
                         f"--megabytes={megabytes}.")
    return {"megabytes": total / _MB, "files": shards,
            "sources": {k: v / _MB for k, v in sizes.items()},
            "skipped": skipped}


def prepare_data_command(input_files: str, output_dir: str, num_workers: int,
                         args, beam: bool = False) -> list[str]:
    """One build: `num_workers` local processes, or with `beam` Apache
    Beam's DirectRunner with `num_workers` worker processes."""
    parallel = ([f"--num_workers={num_workers}"] if not beam else [
        "--runner=DirectRunner",
        f"--beam_pipeline_options=direct_num_workers={num_workers},"
        "direct_running_mode=multi_processing"])
    command = [sys.executable, PREPARE_DATA, f"--input_files={input_files}",
               f"--output_dir={output_dir}", *parallel, "--profile", f"--seq_length={args.seq_length}",
               f"--max_predictions_per_seq={args.max_predictions_per_seq}"]
    if args.vocab_file:
        command.append(f"--vocab_file={args.vocab_file}")
    else:
        command += [f"--vocab_size={args.vocab_size}",
                    f"--vocab_max_sentences={args.vocab_max_sentences}"]
    return command


def _counts(text: str) -> list[int]:
    """A comma-separated list of worker counts, each at least 1."""
    counts = []
    for item in filter(None, text.split(",")):
        if not item.strip().isdecimal() or int(item) < 1:
            raise argparse.ArgumentTypeError(
                f"{item!r} in {text!r} is not a worker count (a whole number "
                "of at least 1, e.g. 1,2)")
        counts.append(int(item))
    return counts


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--megabytes", type=float, default=110.0)
    parser.add_argument("--shard_megabytes", type=float, default=16.0)
    parser.add_argument("--num_workers", type=_counts, default="1,2",
                        help="Comma-separated: one build per value.")
    parser.add_argument("--beam_workers", type=_counts, default="",
                        help="Comma-separated: one DirectRunner build per "
                        "value (needs the beam extra); empty: none.")
    parser.add_argument("--vocab_file", default="",
                        help="Given vocab; empty: learn one.")
    parser.add_argument("--vocab_size", type=int, default=30522)
    parser.add_argument("--vocab_max_sentences", type=int, default=200_000)
    parser.add_argument("--seq_length", type=int, default=128)
    parser.add_argument("--max_predictions_per_seq", type=int, default=20)
    parser.add_argument("--doc_root", default=DOC_ROOT)
    parser.add_argument("--packages_root", default=None)
    args = parser.parse_args(argv)
    builds = [(n, False) for n in args.num_workers]
    builds += [(n, True) for n in args.beam_workers]
    if not builds:
        parser.error("nothing to measure: give --num_workers and/or "
                     "--beam_workers (e.g. --num_workers=1,2)")
    with tempfile.TemporaryDirectory(prefix="bench-real-text-") as work:
        text_dir = os.path.join(work, "text")
        os.makedirs(text_dir)
        start = time.monotonic()
        gathered = gather(text_dir, args.megabytes, args.shard_megabytes,
                          args.doc_root, args.packages_root)
        print(f"gathered {gathered['megabytes']:.1f} MB in "
              f"{gathered['files']} files in {time.monotonic() - start:.0f} s "
              "(" + ", ".join(f"{name} {mb:.1f} MB" for name, mb in
                              gathered["sources"].items())
              + f"; {gathered['skipped']} files skipped as not UTF-8 text)",
              flush=True)
        for num_workers, beam in builds:
            name = f"{'beam' if beam else 'local'}-{num_workers}"
            command = prepare_data_command(
                os.path.join(text_dir, "real-text-*.txt"),
                os.path.join(work, f"out-{name}"), num_workers, args, beam)
            print(f"{name}:", " ".join(command[1:]), flush=True)
            env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
            result = subprocess.run(command, env=env, capture_output=True,
                                    text=True, check=False)
            if result.returncode:
                sys.stderr.write(result.stderr[-3000:])
                raise SystemExit(f"prepare_data failed: {name}")
            table = result.stdout[result.stdout.index("profile:"):]
            print(table, flush=True)


if __name__ == "__main__":
    main()
