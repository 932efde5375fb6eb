"""Random draws that a checkpoint carries, so a resumed run is the run.

A resumed run must draw the dropout masks and random selections the
uninterrupted run would have drawn at the same steps. By default tf_keras's
random layers (`Dropout`, and the attention dropout inside
`MultiHeadAttention`) draw from stateful TF ops whose state lives in the
process: a resumed process starts them over. So a training run

1. switches tf_keras to its generator-backed random ops
   (`tf_keras.backend.experimental.enable_tf_random_generator`: each random
   layer owns a `tf.random.Generator`, whose state is a variable) and seeds
   them from the run's seed (`tf_keras.utils.set_random_seed`, which also
   fixes the initial weights), before the model is built: `seed_run`;
2. adds those generators to the trainer's checkpoint (`carry_random_state`).
   tf_keras leaves them out of checkpoints on purpose
   (`BaseRandomLayer._trackable_children`, for older checkpoints' sake), so
   they go under their own key, `random_layers`, beside `model` and
   `optimizer`; a checkpoint without it (an older run) restores as before.

The encoder's random selections draw from its own generator
(`TokenDropBertEncoder.selection_rng`, also out of the model's checkpoint, so
an initial checkpoint of BERT still matches the encoder), carried the same
way. Under `tf.distribute` every generator gives each replica its own stream
and restores per replica.
"""

import tensorflow as tf
import tf_keras

from token_dropping.model.encoder import TokenDropBertEncoder

CHECKPOINT_KEY = "random_layers"


def seed_run(seed):
    """Generator-backed tf_keras random ops, seeded with `seed` (an int);
    call it before the model is built."""
    tf_keras.backend.experimental.enable_tf_random_generator()
    tf_keras.utils.set_random_seed(int(seed))


def random_generators(model):
    """The `tf.random.Generator` of each tf_keras random layer in `model` and
    of each token-dropping encoder's random selections, in
    `tf.Module.submodules` order (fixed by the model's structure); none for
    layers built before `seed_run` (they use the process's stateful ops)."""
    generators = []
    for module in model.submodules:
        if (isinstance(module, TokenDropBertEncoder)
                and module.selection_rng is not None):
            generators.append(module.selection_rng)
        # tf_keras's BaseRandomLayer keeps its backend.RandomGenerator here.
        backend_rng = getattr(module, "_random_generator", None)
        if not isinstance(module, tf_keras.layers.Layer) or backend_rng is None:
            continue
        backend_rng._maybe_init()  # creates the generator if the layer is new
        generator = getattr(backend_rng, "_generator", None)
        if isinstance(generator, tf.random.Generator):
            generators.append(generator)
    return generators


def carry_random_state(checkpoint, model):
    """Adds `model`'s random generators to `checkpoint` (a
    `tf.train.Checkpoint`, e.g. Model Garden's `Trainer.checkpoint`) before
    it saves or restores; returns how many."""
    generators = random_generators(model)
    if generators:
        setattr(checkpoint, CHECKPOINT_KEY, generators)
    return len(generators)
