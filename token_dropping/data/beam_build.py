"""BeamWorkers: the build's per-file work as Apache Beam pipelines.

`tools/prepare_data.py --runner=...` runs the same worker functions as the
local processes of `sharded_build` (`_document_digests`, then `_build_file`),
each pass as one pipeline with one element per input file:

    beam.Create([(index, task), ...]) | beam.Reshuffle() | beam.Map(run, ...)

`Reshuffle` spreads the files over the runner's workers (otherwise a runner
may fuse `Create` and the work into one worker). Each worker writes its
file's result, by index, into the build's work folder through `tf.io.gfile`
(so a `gs://` output works on Dataflow); when the pipeline has finished, the
driver reads the results back in file order. The plan between the passes
and the merge through the splits' seeded shuffle stay in the driver, so the
records are those of the local `num_workers` > 1 build, record for record.
A retried element rewrites the same files with the same bytes.

Apache Beam is an optional extra (`pip install token-dropping[beam]`) and
imported only here, only when a runner is asked for. Its pipeline options
pass through as TFDS's `tfds build --beam_pipeline_options` takes them:
comma-separated, each `name=value` or `--name=value`, parsed by Beam's own
`PipelineOptions`; an unknown option or a bad value is one line.
"""

import contextlib
import io
import os
import pickle

import tensorflow as tf

from token_dropping.common import files
from token_dropping.data import read_progress
from token_dropping.common.errors import UserError

INSTALL_HINT = "install the extra: pip install token-dropping[beam]"
# Beam 2.77's DirectRunner first tries its Prism runner, a Go binary it
# downloads from GitHub, and falls back to the FnApiRunner. The FnApiRunner is
# the DirectRunner's engine for batch pipelines like this one (it honours
# --direct_num_workers and --direct_running_mode) and needs no download.
_RUNNER_CLASSES = {"DirectRunner": "FnApiRunner"}


def import_beam(runner: str):
    """`apache_beam`, or a one-line error saying how to install it."""
    try:
        import apache_beam  # pylint: disable=import-outside-toplevel
    except ImportError as e:
        raise UserError(
            f"runner={runner!r} needs Apache Beam, which is not installed "
            f"({e}); {INSTALL_HINT}.") from None
    return apache_beam


def pipeline_options(config):
    """Beam's `PipelineOptions` for `config.runner` and its options.

    Raises:
        UserError: naming an empty, unknown or badly valued option, or a
            runner given in the options instead of `runner`.
    """
    beam = import_beam(config.runner)
    flags = []
    given_options = config.beam_pipeline_options
    for option in given_options.split(",") if given_options else []:
        option = option.strip()
        name = option.lstrip("-").split("=", 1)[0]
        if not name:
            raise UserError(
                f"beam_pipeline_options={given_options!r} has "
                "an empty option; give comma-separated name=value pairs, e.g. "
                "direct_num_workers=2,direct_running_mode=multi_processing.")
        if name == "runner":
            raise UserError(
                f"beam_pipeline_options={given_options!r} sets "
                "the runner; give it as runner (--runner) instead.")
        flags.append("--" + option.lstrip("-"))
    runner = _RUNNER_CLASSES.get(config.runner, config.runner)
    options = beam.options.pipeline_options.PipelineOptions(
        flags + [f"--runner={runner}"])
    stderr = io.StringIO()  # argparse prints its usage there, then exits.
    try:
        with contextlib.redirect_stderr(stderr):
            known = options.get_all_options(drop_default=True)
    except SystemExit:
        message = stderr.getvalue().strip().splitlines()[-1]
        raise UserError(
            f"beam_pipeline_options={given_options!r}: "
            f"{message.split('error: ', 1)[-1]}.") from None
    given = options.get_all_options(drop_default=True,
                                    retain_unknown_options=True)
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise UserError(
            f"beam_pipeline_options={given_options!r}: "
            f"{', '.join(unknown)} is not an option of Apache Beam "
            f"{beam.__version__} (see `python -m apache_beam.examples."
            "wordcount --help` for the valid ones).")
    return options


def check(config, output_dir: str) -> None:
    """Checks a Beam build before anything is written.

    Raises:
        UserError: if Beam is missing, an option is bad, or a Dataflow build
            has a local input or output (its workers cannot reach them).
    """
    pipeline_options(config)
    if config.runner == "DataflowRunner":
        local = [path for path in
                 [output_dir] + files.split_patterns(config.input_files)
                 if "://" not in path]
        if local:
            raise UserError(
                f"runner='DataflowRunner' needs input_files and output_dir on "
                f"Cloud Storage (gs://...), which its workers read and write; "
                f"{local[0]!r} is local.")


class BeamWorkers:
    """Maps tasks over a Beam runner's workers, one pipeline per call.

    The counterpart of `sharded_build.ProcessWorkers`: `map` yields
    `function(task)` of each task, in order.

    Args:
        config: the build's `PrepareDataConfig` (its `runner` and
            `beam_pipeline_options`).
        work_dir: the build's work folder; every worker writes there.
    """

    def __init__(self, config, work_dir: str):
        self.config = config
        self.work_dir = work_dir
        self.options = pipeline_options(config)

    def map(self, function, tasks, sizes, what):
        """Runs `function` on every task in a pipeline, then yields the
        results in order; logs the input bytes behind them as `what`."""
        beam = import_beam(self.config.runner)
        results_dir = os.path.join(self.work_dir,
                                   f"results-{function.__name__.strip('_')}")
        tf.io.gfile.makedirs(results_dir)
        progress = read_progress.ReadProgress(sum(sizes), what)
        pipeline = beam.Pipeline(options=self.options)
        _ = (pipeline
             | f"Input files ({what})" >> beam.Create(list(enumerate(tasks)))
             | "Spread over workers" >> beam.Reshuffle()
             | function.__name__ >> beam.Map(_run_and_store, function,
                                             results_dir))
        _run(pipeline, beam, self.config.runner)
        for index, size in enumerate(sizes):
            path = _result_path(results_dir, index)
            with tf.io.gfile.GFile(path, "rb") as f:
                result = pickle.load(f)
            tf.io.gfile.remove(path)
            progress.add(size)
            yield result
        progress.done()

    def __enter__(self):
        return self

    def __exit__(self, *unused_error):
        pass  # Each pipeline has ended (or been cancelled) in `map`.


def _run(pipeline, beam, runner: str) -> None:
    """Runs `pipeline` to its end; a stop (error, SIGTERM) cancels it."""
    result = pipeline.run()
    try:
        state = result.wait_until_finish()
    except BaseException:
        with contextlib.suppress(Exception):
            result.cancel()  # A Dataflow job would otherwise go on.
        raise
    if state != beam.runners.runner.PipelineState.DONE:
        raise RuntimeError(f"The Beam pipeline on {runner} ended {state}; "
                           "nothing was published.")


def _result_path(results_dir: str, index: int) -> str:
    return os.path.join(results_dir, f"{index:05d}.pickle")


def _run_and_store(element, function, results_dir: str) -> None:
    """Beam worker: `function(task)`, stored under the task's index."""
    index, task = element
    result = function(task)
    with tf.io.gfile.GFile(_result_path(results_dir, index), "wb") as f:
        pickle.dump(result, f)
