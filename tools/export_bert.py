"""Export a token-dropping pretraining run as an ordinary BERT.

    # The latest checkpoint of a run (the vocab is the run's task.vocab_file):
    python tools/export_bert.py --model_dir=runs/token_drop_bert_tiny \
        --output_dir=exports/tiny

    # A given checkpoint, an explicit vocab, replacing an earlier export:
    python tools/export_bert.py --model_dir=gs://bucket/runs/base \
        --checkpoint=gs://bucket/runs/base/ckpt-1000000 \
        --vocab_file=uncased_L-12_H-768_A-12/vocab.txt \
        --output_dir=exports/base --overwrite

    # Then fine-tune it with Model Garden's task (docs/export.md,
    # "Fine-tuning on GLUE and SQuAD"):
    python tools/train.py --experiment=bert/sentence_prediction \
        --mode=train_and_eval \
        --config_file=experiments/glue_sst2_finetune.yaml \
        --config_file=exports/tiny/encoder.yaml \
        --params_override=task.init_checkpoint=exports/tiny,...

    # Then load the Hugging Face folder (transformers, or KerasHub on Keras 3):
    #   BertForMaskedLM.from_pretrained("exports/tiny/hf")
    #   keras_hub.models.BertBackbone.from_preset("exports/tiny/hf")

The output holds the encoder checkpoint (`bert_model.ckpt`, an
`init_checkpoint` for bert/sentence_prediction and bert/squad),
`bert_config.json` (BertEncoderV2 arguments), `encoder.yaml`, `vocab.txt`, a
SavedModel with a serving signature, the importance table
(`token_importance.npy`, `.tsv`), and `hf/`: the encoder (and the MLM head of
a pretraining checkpoint) as a Hugging Face folder (model.safetensors,
config.json, tokenizer files).
Everything happens in `token_dropping.export.bert.export_bert`.
"""

import sys

from absl import app
from absl import flags

from token_dropping.export import bert as export
from token_dropping.common import paths
from token_dropping.common.errors import UserError

flags.DEFINE_string("model_dir", None, "Run directory of tools/train.py.")
flags.DEFINE_string("checkpoint", None,
                    "Checkpoint path or directory; default the latest in "
                    "--model_dir.")
flags.DEFINE_string("output_dir", None, "Where the export goes.")
flags.DEFINE_string("vocab_file", None,
                    "Vocabulary file; default the run's task.vocab_file.")
flags.DEFINE_bool("overwrite", False, "Replace a non-empty --output_dir.")
flags.DEFINE_bool("huggingface", True,
                  "Also write hf/, the Hugging Face folder (safetensors, "
                  "config.json, tokenizer files); --nohuggingface skips it.")
flags.DEFINE_bool("do_lower_case", None,
                  "Recorded in the SavedModel and hf/tokenizer_config.json; "
                  "default: what the run's dataset manifest records, else "
                  "a guess from the vocab's name, said as such.")


def main(argv):
    if len(argv) > 1:
        sys.exit(f"export_bert.py: error: unexpected arguments {argv[1:]}")
    home = paths.unexpanded_home(flags.FLAGS)
    if home:
        sys.exit(f"export_bert.py: error: {home}")
    FLAGS = flags.FLAGS
    try:
        result = export.export_bert(
            FLAGS.model_dir, FLAGS.output_dir, checkpoint=FLAGS.checkpoint,
            vocab_file=FLAGS.vocab_file, overwrite=FLAGS.overwrite,
            do_lower_case=FLAGS.do_lower_case, huggingface=FLAGS.huggingface)
    except UserError as e:
        sys.exit(f"export_bert.py: error: {e}")
    print(f"Exported {result.source_checkpoint} (step {result.global_step}) "
          f"to {result.output_dir}")
    print(f"Fine-tune: python tools/train.py "
          "--experiment=bert/sentence_prediction --mode=train_and_eval "
          "--config_file=experiments/glue_sst2_finetune.yaml "
          f"--config_file={result.encoder_yaml} "
          f"--params_override=task.init_checkpoint={result.output_dir},"
          "task.train_data.input_path=...,task.validation_data.input_path=...")
    print(f"do_lower_case={result.do_lower_case}: from "
          f"{result.do_lower_case_source}")
    if result.huggingface:
        print(f"Hugging Face folder: {result.huggingface} (transformers' "
              "from_pretrained, KerasHub's from_preset)")


if __name__ == "__main__":
    app.run(main)
