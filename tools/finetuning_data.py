"""Make fine-tuning records from GLUE's TSV files, for tools/train.py.

    # SST-2 (GLUE's SST-2/ folder: train.tsv, dev.tsv), with an export's vocab:
    python tools/finetuning_data.py --task=sst2 --glue_dir=$GLUE_DIR/SST-2 \
        --vocab_file=exports/base/vocab.txt --output_dir=data/finetune

    # MNLI, matched dev set (MNLI/: train.tsv, dev_matched.tsv):
    python tools/finetuning_data.py --task=mnli --glue_dir=$GLUE_DIR/MNLI \
        --vocab_file=exports/base/vocab.txt --output_dir=data/finetune

It writes `<task>_train.tf_record`, `<task>_eval.tf_record` and
`<task>_meta_data` (num_labels, train_data_size, ...; written last) into
`--output_dir`: what `bert/sentence_prediction` reads. Model Garden's own
`create_finetuning_data.py` reads GLUE only from TFDS (a download).
Everything happens in `token_dropping.data.glue.convert`.
"""

import sys

from absl import app
from absl import flags

from token_dropping.data import glue as glue_data
from token_dropping.common import paths
from token_dropping.common.errors import UserError

_TASK = flags.DEFINE_enum("task", None, sorted(glue_data.PROCESSORS),
                          "The GLUE task of --glue_dir.")
_GLUE_DIR = flags.DEFINE_string("glue_dir", None,
                                "The task's folder of GLUE's TSV files.")
_VOCAB_FILE = flags.DEFINE_string(
    "vocab_file", None, "The pretrained model's vocab.txt (an export's).")
_OUTPUT_DIR = flags.DEFINE_string("output_dir", None,
                                  "Where the records and meta data go.")
_MAX_SEQ_LENGTH = flags.DEFINE_integer("max_seq_length", 128,
                                       "Pieces per example, [CLS] and [SEP] "
                                       "included.")
_DO_LOWER_CASE = flags.DEFINE_bool("do_lower_case", True,
                                   "Lower-case the text (uncased vocab).")


def main(argv):
    if len(argv) > 1:
        sys.exit(f"finetuning_data.py: error: unexpected arguments {argv[1:]}")
    home = paths.unexpanded_home(flags.FLAGS)
    if home:
        sys.exit(f"finetuning_data.py: error: {home}")
    for flag in (_TASK, _GLUE_DIR, _VOCAB_FILE, _OUTPUT_DIR):
        if not flag.value:
            sys.exit(f"finetuning_data.py: error: --{flag.name} is required.")
    try:
        records = glue_data.convert(
            _GLUE_DIR.value, _TASK.value, _VOCAB_FILE.value, _OUTPUT_DIR.value,
            do_lower_case=_DO_LOWER_CASE.value,
            max_seq_length=_MAX_SEQ_LENGTH.value)
    except UserError as e:
        sys.exit(f"finetuning_data.py: error: {e}")
    print(f"Wrote {records.train_size} training and {records.dev_size} dev "
          f"examples ({records.num_labels} labels): {records.train_path}, "
          f"{records.eval_path}, {records.meta_path}")


if __name__ == "__main__":
    app.run(main)
