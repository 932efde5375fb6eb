"""cloze: the original word or a word as frequent, read from the MLM head.

Issue 24's probe that measures pretraining: fine-tuned from the study's
small BERTs, the order probes stayed at chance and the source probe did not
beat bag-of-words. This one asks what pretraining teaches, with no
fine-tuning in between: at one position of a held-out sentence, is the
original word or a word about as frequent in the pretraining text more
likely there? The labels come from the text; frequency matching leaves a
model that knows only how often words occur at chance.

`build_cloze_task(heldout_file, output_dir, pretraining_files=...,
vocab_file=...)`:

1. count the lowercase words of the pretraining text; the candidates are
   those seen at least `MIN_COUNT` times that are one WordPiece of the
   vocabulary, ranked by count;
2. keep each plain held-out sentence (`probe_data.plain_sentence`) with a
   candidate after its first word; pick one such position (seeded), and a
   distractor among the `NEIGHBOURS` candidates on either side of the
   original's rank;
3. split by document (`probe_data.split_by_document`), seeded;
4. write each sentence twice, next to each other in a random order: as
   written (label 1) and with the distractor (label 0), in GLUE's CoLA
   layout like the other built probes (`probe_data.write_task`).

`score(model_dir, params, glue_dir, vocab_file, dev_documents)` reads each
pair of dev rows, masks the position where they differ, and predicts as
original the row whose word the run's MLM head (Model Garden's
`BertPretrainerV2` over `BertEncoderV2`, restored from the run's
checkpoint) gives the larger logit; `model_dir=None` scores a randomly
initialised model.
`pairwise(predictions)` turns another model's per-row predictions (bag of
words, fitted on the same rows) into the same pair choice, so every row of
the table answers the same question.

Example:
>>> build_cloze_task("heldout.txt", "data/cloze", pretraining_files=[
...     "pretrain-numpy.txt"], vocab_file="vocab.txt")["task"]
'cloze'
"""

import collections
import os
import random

import numpy as np
import tensorflow as tf
import tf_keras
from official.modeling import tf_utils
from official.nlp.configs import encoders
from official.nlp.modeling import models

from token_dropping.common.errors import UserError
from token_dropping.common.paths import check_output_path
from token_dropping.data import vocab as vocab_lib
from token_dropping.data import wordpiece
from token_dropping.export import run_reader
from token_dropping.study import predictions as study_predictions
from token_dropping.study import probe_data

MIN_COUNT = 50  # in the pretraining text: a count that ranks reliably
NEIGHBOURS = 3  # candidates on either side of the original's rank
SEQ_LENGTH = 64  # word pieces, as the fine-tuned probes (plain sentences)
_BATCH = 256


def candidates(pretraining_files, vocab):
    """The candidate words, most frequent first (ties by spelling): lowercase
    ASCII letters, one piece of `vocab`, `MIN_COUNT` times or more."""
    pieces, counts = set(vocab), collections.Counter()
    for path in pretraining_files:
        if not os.path.isfile(path):
            raise UserError(f"pretraining file {path!r}: no such file.")
        with open(path, encoding="utf-8") as f:
            for line in f:
                counts.update(w for w in line.split()
                              if w.isascii() and w.isalpha() and w.islower())
    words = [w for w, c in counts.items() if c >= MIN_COUNT and w in pieces]
    return sorted(words, key=lambda w: (-counts[w], w))


def _pairs(rows, rank, ranked, rng):
    """[(doc, label, text)] pairs, shuffled: each sentence as written and
    with a frequency-matched distractor, in a random order."""
    rng.shuffle(rows)
    out = []
    for doc, words in rows:
        position = rng.choice([i for i, w in enumerate(words)
                               if i and w in rank])
        r, width, near = rank[words[position]], NEIGHBOURS, []
        while not near:  # wider only if every neighbour is in the sentence
            near = [ranked[j] for j in range(max(0, r - width),
                                             min(len(ranked), r + width + 1))
                    if j != r and ranked[j] not in words]
            width += NEIGHBOURS
        other = list(words)
        other[position] = rng.choice(near)
        pair = [(doc, 1, " ".join(words)), (doc, 0, " ".join(other))]
        if rng.random() < 0.5:
            pair.reverse()
        out += pair
    return out


def build_cloze_task(heldout_file, output_dir, *, pretraining_files,
                     vocab_file, seed=0, num_train=2000, num_dev=2000):
    """Writes the cloze task into `output_dir`; returns its manifest.

    `num_train` and `num_dev` count sentences: each is two rows.

    Raises:
        UserError: a bad argument, or too few sentences, before anything is
            written.
    """
    probe_data.check_counts(num_train, num_dev)
    check_output_path(output_dir, "output_dir", directory=True)
    ranked = candidates(pretraining_files, vocab_lib.read_vocab(vocab_file))
    if len(ranked) < 2 * NEIGHBOURS + 1:
        raise UserError(
            f"the pretraining text has {len(ranked)} words seen at least "
            f"{MIN_COUNT} times that are one piece of {vocab_file!r}; the "
            f"cloze probe needs at least {2 * NEIGHBOURS + 1}.")
    rank = {w: i for i, w in enumerate(ranked)}
    documents, _ = probe_data.read_documents(
        heldout_file, keep=lambda words: any(w in rank for w in words[1:]))
    rng = random.Random(seed)
    rng.shuffle(documents)
    dev, train = probe_data.split_by_document(
        documents, num_dev, num_train, heldout_file,
        f"(with a word seen at least {MIN_COUNT} times in pretraining) in "
        f"{len(documents)} documents")
    return probe_data.write_task(
        output_dir, heldout_file, _pairs(train, rank, ranked, rng),
        _pairs(dev, rank, ranked, rng),
        dict(task="cloze", seed=seed, candidates=len(ranked),
             min_count=MIN_COUNT, neighbours=NEIGHBOURS), star=True)


def read_pairs(glue_dir):
    """Per dev pair: (left words, right words, word of row 0, word of row
    1, label of row 0), from the task's dev.tsv; one line on a file that is
    not a cloze task's."""
    path = os.path.join(glue_dir, "dev.tsv")
    if not tf.io.gfile.exists(path):
        raise UserError(f"{path!r}: no such file (a cloze probe's dev set).")
    with tf.io.gfile.GFile(path) as f:
        rows = [line.rstrip("\n").split("\t") for line in f if line.strip()]
    pairs = []
    for n in range(0, len(rows) - 1, 2):
        first, second = rows[n][3].split(), rows[n + 1][3].split()
        differ = [i for i, (a, b) in enumerate(zip(first, second)) if a != b]
        if (len(first) != len(second) or len(differ) != 1
                or {rows[n][1], rows[n + 1][1]} != {"0", "1"}):
            raise UserError(f"{path!r}: rows {n + 1} and {n + 2} are not a "
                            "sentence and its one-word change; not a cloze "
                            "task (--probe=cloze builds one).")
        i = differ[0]
        pairs.append((first[:i], first[i + 1:], first[i], second[i],
                      int(rows[n][1])))
    if len(rows) % 2:
        raise UserError(f"{path!r} has an odd number of rows; not a cloze "
                        "task (--probe=cloze builds one).")
    return pairs


def _inputs(pairs, vocab_file, vocab, seq_length):
    """Word ids [pairs, seq_length], the mask's position, and the two
    candidates' ids per pair."""
    ids = {piece: i for i, piece in enumerate(vocab)}
    tokenizer = wordpiece.WordPieceIds(vocab_file, vocab, lower_case=True)
    left, left_splits = tokenizer.tokenize(
        [" ".join(p[0]) for p in pairs])
    right, right_splits = tokenizer.tokenize([" ".join(p[1]) for p in pairs])
    words = np.zeros([len(pairs), seq_length], np.int32)
    positions = np.zeros([len(pairs), 1], np.int32)
    for n in range(len(pairs)):
        a = list(left[left_splits[n]:left_splits[n + 1]])
        b = list(right[right_splits[n]:right_splits[n + 1]])
        row = ([ids["[CLS]"]] + a + [ids["[MASK]"]] + b)[:seq_length - 1]
        row += [ids["[SEP]"]]
        if len(a) + 1 >= seq_length - 1:
            raise UserError(f"a cloze sentence is longer than {seq_length} "
                            "word pieces before its blank.")
        words[n, :len(row)] = row
        positions[n, 0] = len(a) + 1
    choices = np.array([[ids[p[2]], ids[p[3]]] for p in pairs], np.int32)
    return words, positions, choices


def _pretrainer(params):
    """Model Garden's `BertPretrainerV2` over `BertEncoderV2`, the run's
    sizes (`export.run_reader`), its variables created."""
    encoder = encoders.build_encoder(run_reader.bert_encoder_config(params))
    model_config = params.task.model
    pretrainer = models.BertPretrainerV2(
        encoder_network=encoder,
        mlm_activation=tf_utils.get_activation(model_config.mlm_activation),
        mlm_initializer=tf_keras.initializers.TruncatedNormal(
            stddev=model_config.mlm_initializer_range))
    pretrainer(_batch(np.zeros([1, seq_length(params)], np.int32),
                      np.zeros([1, 1], np.int32)))
    return pretrainer


def seq_length(params):
    """`SEQ_LENGTH`, or the model's positions if it has fewer."""
    return min(SEQ_LENGTH,
               params.task.model.encoder.get().max_position_embeddings)


def _batch(words, positions):
    return dict(input_word_ids=words, input_mask=(words > 0).astype(np.int32),
                input_type_ids=np.zeros_like(words),
                masked_lm_positions=positions)


def score(model_dir, params, glue_dir, vocab_file, dev_documents, *,
          seed=0):
    """Per dev row, a `predictions.DevPredictions`: label 1 for the row
    whose word the MLM head prefers at the blank of its pair.

    Args:
        model_dir: a pretraining run (its latest checkpoint's `encoder` and
            `masked_lm`), or None for a random model seeded with `seed`.
        params: a run's `ExperimentConfig` (the model's sizes).
        glue_dir: the cloze task.
        vocab_file: the run's vocabulary.
        dev_documents: per dev row, its document.
    """
    pairs = read_pairs(glue_dir)
    if 2 * len(pairs) != len(dev_documents):
        raise UserError(f"{glue_dir!r}: {2 * len(pairs)} dev rows but "
                        f"{len(dev_documents)} documents given.")
    vocab = vocab_lib.read_vocab(vocab_file)
    words, positions, choices = _inputs(pairs, vocab_file, vocab,
                                        seq_length(params))
    tf_keras.utils.set_random_seed(seed)
    pretrainer = _pretrainer(params)
    if model_dir is not None:
        checkpoint = tf.train.latest_checkpoint(model_dir)
        if checkpoint is None:
            raise UserError(f"{model_dir!r} holds no checkpoint to score.")
        tf.train.Checkpoint(
            encoder=pretrainer.encoder_network,
            masked_lm=pretrainer.masked_lm).read(
                checkpoint).expect_partial().assert_existing_objects_matched()
    chosen = []
    for start in range(0, len(pairs), _BATCH):
        end = start + _BATCH
        logits = pretrainer(_batch(words[start:end], positions[start:end]),
                            training=False)["mlm_logits"].numpy()[:, 0]
        chosen.append(np.take_along_axis(logits, choices[start:end], 1))
    chosen = np.concatenate(chosen).astype(np.float64)  # [pairs, 2]
    return _rows(chosen, [p[4] for p in pairs], dev_documents)


def _rows(scores, first_labels, dev_documents):
    """Per-row predictions from per-pair scores of (row 0, row 1)."""
    labels, predicted, probability = [], [], []
    for (a, b), first in zip(scores, first_labels):
        p_first = 1.0 / (1.0 + np.exp(b - a))  # softmax over the two
        pick_first = int(a >= b)
        labels += [first, 1 - first]
        predicted += [pick_first, 1 - pick_first]
        probability += [max(p_first, 1 - p_first)] * 2
    return study_predictions.DevPredictions(
        range(len(labels)), [str(d) for d in dev_documents], labels,
        predicted, probability)


def pairwise(predictions):
    """Another model's per-row predictions (e.g. bag of words) as the same
    pair choice: in each pair, the row with the larger probability of
    label 1 is called the original."""
    p = np.asarray(predictions.probability, np.float64)
    one = np.where(np.asarray(predictions.predicted) == 1, p, 1 - p)
    if len(one) % 2:
        raise UserError("cloze predictions: an odd number of rows.")
    pairs = one.reshape(-1, 2)
    scores = np.log(np.clip(pairs, 1e-12, None))
    return _rows(scores, list(np.asarray(predictions.labels)[0::2]),
                 predictions.documents)
