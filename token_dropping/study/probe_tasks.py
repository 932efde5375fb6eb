"""probe_tasks: the built probes by name, for `--probe`.

One place that maps a probe's name to its builder and to the sentence the
study's summary says about it, so the driver makes any of them with one
call (`build`) and the flag's choices are `NAMES`:

- `source` (`probe_data.build_source_task`): standard library documentation
  or a third-party package's docstrings;
- `acceptability` (`probe_data.build_probe_task`): real sentences against
  ones with two adjacent words swapped or one word dropped;
- `order` (`probe_data.build_order_task`): a sentence as it is, or with two
  adjacent words swapped; bag-of-words is at chance by construction;
- `sentence_order` (`sentence_order.build_sentence_order_task`): two
  adjacent sentences in order or swapped; bag-of-words at chance too;
- `cloze` (`cloze.build_cloze_task`): the original word at one position
  or a word as frequent in the pretraining text, read from each model's
  MLM head without fine-tuning (`ZERO_SHOT`).

Example:
>>> build("order", "corpus/heldout.txt", "runs/probe", num_train=2000,
...       num_dev=1000)["task"]
'order'
"""

from token_dropping.common.errors import UserError
from token_dropping.study import cloze
from token_dropping.study import probe_data
from token_dropping.study import sentence_order

NOTES = {
    "source": (
        "Probe: source, whether a sentence of a held-out document comes "
        "from Python's standard library documentation or from a "
        "third-party package's docstrings (`probe_data.build_source_task`; "
        "labels from where the text is, not from any model)."),
    "acceptability": (
        "Probe: acceptability, real held-out sentences against the same "
        "sentences with two adjacent words swapped or one word dropped "
        "(`probe_data.build_probe_task`)."),
    "order": (
        "Probe: word order, each held-out sentence once, as written or with "
        "two adjacent words swapped (`probe_data.build_order_task`); both "
        "versions hold the same words, so bag-of-words is at chance by "
        "construction."),
    "sentence_order": (
        "Probe: sentence order, two adjacent held-out sentences in their "
        "order or swapped (`sentence_order.build_sentence_order_task`); "
        "both orders hold the same words, so bag-of-words is at chance by "
        "construction."),
    "cloze": (
        "Probe: cloze, at one position of a held-out sentence the original "
        "word or a word about as frequent in the pretraining text (one of "
        "the 3 ranked on either side of it; `cloze.build_cloze_task`), "
        "each sentence written both ways; a model's choice is the word its "
        "MLM head gives the larger logit at the masked position, read with "
        "no fine-tuning (`cloze.score`). Knowing how often words occur "
        "gets a model nowhere; bag of words, fitted on the training rows, "
        "makes the same choice between the two rows of a pair."),
}
NAMES = tuple(NOTES)
# Probes read from the pretrained model as it is (no fine-tuning).
ZERO_SHOT = frozenset({"cloze"})


def build(name, heldout_file, output_dir, *, sources=None, seed=0,
          num_train=2000, num_dev=1000, pretraining_files=None,
          vocab_file=None):
    """Writes the probe `name` into `output_dir`; returns its manifest.

    Args:
        name: one of `NAMES`.
        heldout_file: the held-out documents (BERT's text format).
        output_dir: the probe's GLUE directory (CoLA layout).
        sources: per document of `heldout_file`, its source (e.g.
            `text.heldout_sources()`); `source` needs it, the others do not
            read it.
        pretraining_files, vocab_file: the pretraining text and its
            vocabulary; `cloze` needs them, the others do not read them.
        seed, num_train, num_dev: as each builder takes them.

    Raises:
        UserError: an unknown name, or what the builder refuses.
    """
    if name not in NOTES:
        raise UserError(f"probe={name!r} is not one of {', '.join(NAMES)}.")
    counts = dict(seed=seed, num_train=num_train, num_dev=num_dev)
    if name == "source":
        if sources is None:
            raise UserError("probe='source' needs the sources of the "
                            "held-out documents (sources=...).")
        return probe_data.build_source_task(heldout_file, sources,
                                            output_dir, **counts)
    if name == "cloze":
        if not pretraining_files or not vocab_file:
            raise UserError("probe='cloze' needs the pretraining text and "
                            "its vocabulary (pretraining_files=..., "
                            "vocab_file=...).")
        return cloze.build_cloze_task(
            heldout_file, output_dir, pretraining_files=pretraining_files,
            vocab_file=vocab_file, **counts)
    if name == "acceptability":
        return probe_data.build_probe_task(heldout_file, output_dir, **counts)
    if name == "order":
        return probe_data.build_order_task(heldout_file, output_dir, **counts)
    return sentence_order.build_sentence_order_task(heldout_file, output_dir,
                                                    **counts)


def note(name):
    """What the summary says the probe `name` is."""
    if name not in NOTES:
        raise UserError(f"probe={name!r} is not one of {', '.join(NAMES)}.")
    return NOTES[name]


def zero_shot(config):
    """Whether the study reads its probe from the models as they are."""
    return not config.glue_dir and config.probe in ZERO_SHOT


def method(config):
    """How the summary says the probe was taken."""
    if zero_shot(config):
        return ("Read from each pretrained model annealed at BERT's largest "
                "compute, once per pretraining seed, for the table; for "
                "`probe_accuracy.png` also at BERT's other budgets' compute "
                "(`finetuning.csv`: a row per reading with its model's "
                "training FLOPs, finetune_seed 0: nothing is fine-tuned).")
    seeds = config.finetune_seeds
    return (f"Fine-tuned with Model Garden's `bert/sentence_prediction` "
            f"({config.glue_task} layout), {seeds} fine-tuning "
            f"seed{'s' if seeds > 1 else ''} per pretrained model (annealed "
            "at BERT's largest compute).")


def verdict(counts):
    """The summary's sentence on whether the probe measures pretraining."""
    if counts:
        return ("The probe measures pretraining: BERT beats the randomly "
                "initialised encoder, bag of words and the majority class, "
                "each beyond its paired interval.")
    return ("The probe does NOT measure pretraining here: BERT does not beat "
            "every control (randomly initialised encoder, bag of words, "
            "majority class) beyond its paired interval, so its accuracies "
            "say nothing about the models.")
