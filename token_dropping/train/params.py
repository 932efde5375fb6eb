"""Reading an experiment's params: which data configs a mode reads, whether
it is pretraining, and the encoder's config.

Shared by the run's checks (`checks`), its data step (`run_data`) and the
driver; none of them changes the params here.
"""

from official.nlp.tasks import masked_lm

SPLITS = ("train_data", "validation_data")
DUMMY = "dummy"  # Model Garden's input_path for fake data


def uses(mode):
    """The data configs a Model Garden mode reads.

    >>> uses("train_and_eval")
    ['train_data', 'validation_data']
    """
    return [name for name, word in zip(SPLITS, ("train", "eval"))
            if word in mode]


def is_pretraining(params):
    """Masked-LM pretraining (ours or Model Garden's), not fine-tuning."""
    return isinstance(params.task, masked_lm.MaskedLMConfig)


def encoder_config(params):
    """The encoder's config (the chosen branch of the one-of)."""
    return params.task.model.encoder.get()
