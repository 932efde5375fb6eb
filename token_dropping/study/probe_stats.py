"""probe_stats: probe dev accuracies with paired document-bootstrap intervals.

The probe's rows (each pretrained model, the random encoder, bag-of-words,
the majority class) are read from their per-example dev predictions
(`predictions.DevPredictions`, one per fine-tuning), not from accuracies
alone, so that each row gets an interval and two rows a paired one:

1. `accuracy_interval(runs)`: a model's fine-tunings (its pretraining seeds
   x fine-tuning seeds, any number): per dev example the share of them that
   got it right, the mean of that is the model's mean dev accuracy, and a
   document bootstrap (`stats.document_bootstrap`: whole dev documents
   resampled, their sentences share topic and wording) gives the 95%
   interval.
2. `paired_difference(runs, baseline)`: the accuracy gap `runs - baseline`
   with its interval, from the per-example difference of the two shares,
   resampled with the same documents for both (paired). Every call with the
   same `seed` on the same dev set draws the same resamples (the bootstrap's
   draws depend only on the seed and the number of documents), so each
   row's interval and each gap come from one set of resamples.
3. `measures_pretraining(pretrained, controls)`: issue 24's rule, the probe
   counts only if the pretrained model beats every control (random encoder,
   bag-of-words, majority) beyond the interval: each paired gap's interval
   lies above 0.
4. `probe_table(models, baseline)`: every row's accuracy and its paired gap
   to the baseline, for the report.

The interval is over the dev documents with the seeds held fixed (their
predictions averaged); the spread over pretraining seeds is
`stats.paired_interval`'s job.

Example:
>>> bert = [predictions.read(p) for p in bert_prediction_files]
>>> random_encoder = [predictions.read(p) for p in random_files]
>>> accuracy_interval(bert)
Interval(mean=0.675, low=0.61, high=0.74, n=76, confidence=0.95)
>>> paired_difference(bert, random_encoder).real
True
"""

import collections

import numpy as np

from token_dropping.common.errors import UserError
from token_dropping.study import predictions as study_predictions
from token_dropping.study import stats

SAMPLES = 10000


def _dev_set(runs, what):
    """The dev set the runs share: (documents, labels); checked."""
    runs = list(runs)
    if not runs:
        raise UserError(f"{what}: no fine-tunings; give at least one run's "
                        "dev predictions.")
    first = runs[0]
    for run in runs[1:]:
        if (run.index, run.documents, run.labels) != (
                first.index, first.documents, first.labels):
            raise UserError(f"{what}: the fine-tunings were scored on "
                            "different dev sets (examples, documents or "
                            "labels differ); compare runs of one probe.")
    return first.documents, first.labels


def share_correct(runs, what="share_correct"):
    """Per dev example, the share of `runs` that got it right (numpy)."""
    _dev_set(runs, what)
    return np.mean([run.correct for run in runs], axis=0)


def accuracy_interval(runs, *, samples=SAMPLES, seed=0,
                      confidence=stats.CONFIDENCE):
    """A model's mean dev accuracy over `runs` with a document-bootstrap
    interval (`stats.Interval`, `n` = dev documents).

    Args:
        runs: the model's `DevPredictions`, one per fine-tuning.
        samples: bootstrap resamples.
        seed: the resampling's seed; the same for every row compared.
        confidence: of the two-sided percentile interval.
    """
    documents, _ = _dev_set(runs, "accuracy_interval")
    return stats.document_bootstrap(share_correct(runs), documents,
                                    samples=samples, seed=seed,
                                    confidence=confidence)


def paired_difference(runs, baseline, *, samples=SAMPLES, seed=0,
                      confidence=stats.CONFIDENCE):
    """The accuracy gap `runs - baseline` with a paired document-bootstrap
    interval (`Interval.real`: it excludes 0).

    Args:
        runs, baseline: `DevPredictions` of two models on the same dev set,
            one per fine-tuning (the counts may differ).
    """
    documents, _ = _dev_set(list(runs) + list(baseline), "paired_difference")
    gap = share_correct(runs) - share_correct(baseline)
    return stats.document_bootstrap(gap, documents, samples=samples,
                                    seed=seed, confidence=confidence)


def majority(runs):
    """The majority-class row on the same dev set: `DevPredictions` that
    always answer the most frequent dev label (probability 1)."""
    documents, labels = _dev_set(runs, "majority")
    label = collections.Counter(labels).most_common(1)[0][0]
    return study_predictions.DevPredictions(
        index=runs[0].index, documents=documents, labels=labels,
        predicted=[label] * len(labels), probability=[1.0] * len(labels))


def measures_pretraining(pretrained, controls, *, samples=SAMPLES, seed=0,
                         confidence=stats.CONFIDENCE):
    """Whether the probe measures pretraining: (verdict, {control: gap}).

    Args:
        pretrained: the pretrained model's `DevPredictions` (e.g. BERT's).
        controls: {name: [DevPredictions, ...]}, e.g. the random encoder's
            fine-tunings, `[bag_of_words_row(...).predictions]` and
            `[majority(pretrained)]`.

    Returns:
        True only if every paired gap `pretrained - control` has its whole
        interval above 0; and each gap (`stats.Interval`).
    """
    if not controls:
        raise UserError("measures_pretraining: no controls; give at least "
                        "the random encoder and bag-of-words.")
    gaps = {name: paired_difference(pretrained, runs, samples=samples,
                                    seed=seed, confidence=confidence)
            for name, runs in controls.items()}
    return all(gap.low > 0 for gap in gaps.values()), gaps


def probe_table(models, baseline, *, samples=SAMPLES, seed=0,
                confidence=stats.CONFIDENCE):
    """The probe's rows, one per model in `models`' order: dicts with
    `model`, `accuracy` (`accuracy_interval`) and `gap` (the paired
    `paired_difference` against `baseline`; None for the baseline itself).

    Args:
        models: {name: [DevPredictions, ...]}: the pretrained models, the
            random encoder, `[bag_of_words_row(...).predictions]`,
            `[majority(...)]`, all on one dev set.
        baseline: the name in `models` every gap is taken against (e.g.
            "bert").
    """
    if baseline not in models:
        raise UserError(f"baseline={baseline!r} is not one of the models "
                        f"{', '.join(models)}.")
    options = dict(samples=samples, seed=seed, confidence=confidence)
    return [dict(model=name,
                 accuracy=accuracy_interval(runs, **options),
                 gap=None if name == baseline else paired_difference(
                     runs, models[baseline], **options))
            for name, runs in models.items()]
