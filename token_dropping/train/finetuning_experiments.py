"""Registers Model Garden's BERT fine-tuning experiments.

`bert/sentence_prediction` (GLUE), `bert/sentence_prediction_text`,
`bert/squad` and `bert/tagging` come from Model Garden's
`official.nlp.configs.finetuning_experiments`; importing this module
registers them, so a plain BERT export of ours fine-tunes through
`tools/train.py` with Model Garden's own tasks:

    python tools/train.py --experiment=bert/sentence_prediction \\
        --config_file=experiments/glue_sst2_finetune.yaml ...

`import token_dropping` does not import it: its data loaders and tasks are
needed only when fine-tuning (`tools/train.py` and the study's probe import
it by name).
"""

from official.nlp.configs import finetuning_experiments  # noqa: F401
