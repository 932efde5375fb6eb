"""token_dropping.model.flops against FLOP counts worked out by hand.

Each product `[m, k] x [k, n]` is `2 * m * n * k`. The sums below are written
term by term (Q, K, V, scores, weighted sum, output, FFN in, FFN out) so a
reader can check them without the library.
"""

import pytest

from token_dropping.model import flops
from token_dropping.common.errors import UserError


def test_four_layer_layout_with_default_drop_layers():
    # seq 8, hidden 4, inner 16, 4 layers, keep 4; default layers (1, 3):
    # layer 0 full, layer 1 transition, layer 2 dropped, layer 3 full.
    full = (2 * 8 * 4 * 4 * 3         # Q, K, V: 8 tokens x [4, 4]
            + 2 * 8 * 8 * 4 * 2       # scores and weighted sum: 8 x 8 x 4
            + 2 * 8 * 4 * 4           # output projection
            + 2 * 8 * 4 * 16 * 2)     # FFN in and out
    # = 768 + 1024 + 256 + 2048 = 4096
    assert flops.layer_flops(8, 8, hidden_size=4, inner_dim=16) == full
    transition = (2 * 4 * 4 * 4       # Q: 4 kept tokens
                  + 2 * 8 * 4 * 4 * 2  # K, V: all 8 tokens
                  + 2 * 4 * 8 * 4 * 2  # 4 queries x 8 keys
                  + 2 * 4 * 4 * 4      # output projection, kept only
                  + 2 * 4 * 4 * 16 * 2)  # FFN, kept only
    # = 128 + 512 + 512 + 128 + 1024 = 2304
    assert flops.layer_flops(4, 8, hidden_size=4, inner_dim=16) == transition
    dropped = (2 * 4 * 4 * 4 * 3 + 2 * 4 * 4 * 4 * 2 + 2 * 4 * 4 * 4
               + 2 * 4 * 4 * 16 * 2)
    # = 384 + 256 + 128 + 1024 = 1792
    assert flops.layer_flops(4, 4, hidden_size=4, inner_dim=16) == dropped

    sizes = dict(seq_length=8, hidden_size=4, num_layers=4, inner_dim=16)
    assert flops.encoder_flops(**sizes) == 4 * 4096
    assert flops.encoder_flops(**sizes, token_keep_k=4) == (
        4096 + 2304 + 1792 + 4096)  # 12288
    assert flops.flop_ratio(**sizes, token_keep_k=4) == 12288 / 16384


def test_three_layer_layout_with_explicit_range_and_mlm_head():
    # seq 10, hidden 2, inner 6, 3 layers, keep 3, layers (0, 2):
    # layer 0 transition, layer 1 dropped, layer 2 full. Queries (3) and keys
    # (10) differ, so swapping them in the transition layer would show.
    full = (2 * 10 * 2 * 2 * 4        # Q, K, V, output: 80 each
            + 2 * 10 * 10 * 2 * 2     # scores, weighted sum: 400 each
            + 2 * 10 * 2 * 6 * 2)     # FFN in and out: 240 each
    assert flops.layer_flops(10, 10, hidden_size=2, inner_dim=6) == full
    transition = (2 * 3 * 2 * 2 * 2   # Q and output on 3 kept: 24 each
                  + 2 * 10 * 2 * 2 * 2  # K and V on all 10: 80 each
                  + 2 * 3 * 10 * 2 * 2  # 3 queries x 10 keys: 120 each
                  + 2 * 3 * 2 * 6 * 2)  # FFN on 3 kept: 72 each
    # = 48 + 160 + 240 + 144 = 592
    assert flops.layer_flops(3, 10, hidden_size=2, inner_dim=6) == transition
    dropped = 2 * 3 * 2 * 2 * 4 + 2 * 3 * 3 * 2 * 2 + 2 * 3 * 2 * 6 * 2
    # = 96 + 72 + 144 = 312
    assert flops.layer_flops(3, 3, hidden_size=2, inner_dim=6) == dropped
    # MLM head per prediction: transform [2, 2] and vocabulary [2, 7].
    head = 2 * (2 * 2 * 2 + 2 * 2 * 7)  # 2 predictions x (8 + 28)
    assert flops.mlm_head_flops(hidden_size=2, vocab_size=7,
                                max_predictions_per_seq=2) == head == 72

    sizes = dict(seq_length=10, hidden_size=2, num_layers=3, inner_dim=6)
    drop = dict(token_keep_k=3, drop_start_layer=0, drop_end_layer=2)
    mlm = dict(vocab_size=7, max_predictions_per_seq=2)
    assert flops.encoder_flops(**sizes, **drop) == 592 + 312 + 1600
    assert flops.pretraining_flops(**sizes, **mlm) == 3 * 1600 + 72
    assert flops.pretraining_flops(**sizes, **mlm, **drop) == 2504 + 72
    assert flops.flop_ratio(**sizes, **drop, **mlm) == 2576 / 4872
    assert flops.flop_ratio(**sizes, **drop) == 2504 / 4800
    # Dropping to the very end: transition, then two dropped layers.
    assert flops.encoder_flops(**sizes, token_keep_k=3, drop_start_layer=0,
                               drop_end_layer=3) == 592 + 2 * 312


def test_keeping_every_token_costs_what_bert_costs():
    sizes = dict(seq_length=64, hidden_size=32, num_layers=6, inner_dim=128)
    for start, end in [(None, None), (0, 6), (2, 3)]:
        assert flops.flop_ratio(**sizes, token_keep_k=64,
                                drop_start_layer=start,
                                drop_end_layer=end) == 1.0


def test_bert_base_layout_matches_the_paper():
    # 12 x 768, seq 512, keep 256, layers 5..10 dropped: about 0.75.
    base = dict(seq_length=512, hidden_size=768, num_layers=12, inner_dim=3072)
    layers_only = flops.flop_ratio(**base, token_keep_k=256)
    with_head = flops.flop_ratio(**base, token_keep_k=256, vocab_size=30522,
                                 max_predictions_per_seq=76)
    assert layers_only == pytest.approx(0.7458, abs=1e-4)
    assert with_head == pytest.approx(0.7551, abs=1e-4)
    # BERT-base's encoder layers: about 96.6 GFLOPs forward per sequence.
    assert flops.encoder_flops(**base) == pytest.approx(96.64e9, rel=1e-3)


@pytest.mark.parametrize("call,message", [
    (lambda: flops.encoder_flops(seq_length=512, hidden_size=768,
                                 num_layers=12, inner_dim=3072,
                                 token_keep_k=600),
     "token_keep_k=600 exceeds seq_length=512"),
    (lambda: flops.encoder_flops(seq_length=0, hidden_size=768,
                                 num_layers=12, inner_dim=3072),
     "seq_length=0"),
    (lambda: flops.encoder_flops(seq_length=8, hidden_size=4, num_layers=4,
                                 inner_dim=16, token_keep_k=4,
                                 drop_start_layer=3, drop_end_layer=3),
     "drop_start_layer=3 and drop_end_layer=3"),
    (lambda: flops.encoder_flops(seq_length=8, hidden_size=4, num_layers=4,
                                 inner_dim=16, drop_start_layer=1),
     "need a token_keep_k"),
    (lambda: flops.flop_ratio(seq_length=8, hidden_size=4, num_layers=4,
                              inner_dim=16, token_keep_k=4, vocab_size=10),
     "max_predictions_per_seq=None"),
    (lambda: flops.pretraining_flops(seq_length=8, hidden_size=4,
                                     num_layers=4, inner_dim=16,
                                     vocab_size=10,
                                     max_predictions_per_seq=9),
     "max_predictions_per_seq=9 exceeds seq_length=8"),
    (lambda: flops.flop_ratio(seq_length=8, hidden_size=4.5, num_layers=4,
                              inner_dim=16, token_keep_k=4),
     "hidden_size=4.5"),
])
def test_invalid_arguments_name_the_value(call, message):
    with pytest.raises(UserError) as error:
        call()
    assert message in str(error.value)


# The variants: hand-computed mixes of layer_flops.

SIZES4 = dict(seq_length=8, hidden_size=4, num_layers=4, inner_dim=16)
HEAD = dict(vocab_size=10, max_predictions_per_seq=2)
HEAD_FLOPS = 2 * (2 * 4 * 4 + 2 * 4 * 10)  # 2 predictions x (32 + 80) = 224
FULL, TRANSITION, DROPPED = 4096, 2304, 1792  # the first test's layers
BERT = 4 * FULL + HEAD_FLOPS


def test_random_per_layer_has_no_transition_layer():
    # Layers (1, 3): layers 1 and 2 each run 4 of 8 tokens over 4 keys.
    assert flops.encoder_flops(**SIZES4, token_keep_k=4,
                               selection="random_per_layer") == (
        FULL + DROPPED + DROPPED + FULL)
    assert flops.encoder_flops(**SIZES4, token_keep_k=8,
                               selection="random_per_layer") == 4 * FULL


def test_train_flops_average_a_schedule_over_its_stages():
    # No dropping for the first 25%, keep 4 for 50%, no dropping for 25%.
    vanilla = FULL + TRANSITION + DROPPED + FULL + HEAD_FLOPS
    schedule = ((0.0, 8), (0.25, 4), (0.75, 8))
    got = flops.train_flops(**SIZES4, **HEAD, keep_k_schedule=schedule)
    assert got == pytest.approx(3 * (0.25 * BERT + 0.5 * vanilla
                                     + 0.25 * BERT))
    # No schedule: 3x the forward count, as before.
    assert flops.train_flops(**SIZES4, **HEAD, token_keep_k=4) == 3 * vanilla
    assert flops.train_flops(**SIZES4, **HEAD) == 3 * BERT


def test_train_flops_amortise_the_consistency_pass():
    # Every 10th step adds a full-length pass, forward and backward.
    vanilla = FULL + TRANSITION + DROPPED + FULL + HEAD_FLOPS
    got = flops.train_flops(**SIZES4, **HEAD, token_keep_k=4,
                            consistency_interval=10)
    assert got == pytest.approx(3 * vanilla + 3 * BERT / 10)
    # Random-LTD ramp 4 -> 8 in two equal stages, with consistency every 4.
    per_layer = FULL + 2 * DROPPED + FULL + HEAD_FLOPS
    got = flops.train_flops(**SIZES4, **HEAD, token_keep_k=4,
                            selection="random_per_layer",
                            keep_k_schedule=((0.0, 4), (0.5, 8)),
                            consistency_interval=4)
    assert got == pytest.approx(3 * (0.5 * per_layer + 0.5 * BERT)
                                + 3 * BERT / 4)


def test_config_train_flops_of_the_registered_variants():
    # The registered tiny experiments' training FLOPs per step, from first
    # principles: 4 layers of width 128 (FFN 512), seq 128, keep 64, layers
    # (1, 3) by default, 20 predictions over 8000 ids, batch 32; a step is
    # forward + backward = 3 forwards.
    from official.core import exp_factory
    import token_dropping  # noqa: F401  (registers the experiments)

    def matmul(m, k, n):  # [m, k] x [k, n]
        return 2 * m * k * n

    h, f, seq, keep, vocab = 128, 512, 128, 64, 8000
    predictions, batch = 20, 32

    def layer(queries, keys):
        return (matmul(queries, h, h)           # Q
                + 2 * matmul(keys, h, h)        # K and V
                + matmul(queries, h, keys)      # scores QK^T
                + matmul(queries, keys, h)      # weighted sum of V
                + matmul(queries, h, h)         # output projection
                + matmul(queries, h, f) + matmul(queries, f, h))  # FFN

    head = predictions * (matmul(1, h, h) + matmul(1, h, vocab))
    bert = 4 * layer(seq, seq) + head
    # Layer 0 full, 1 transition (kept queries over all keys), 2 kept only,
    # 3 full again.
    vanilla = (layer(seq, seq) + layer(keep, seq) + layer(keep, keep)
               + layer(seq, seq) + head)
    # random-LTD: layers 1 and 2 each on their own subset, no transition;
    # kept length 64 -> 128 in 8 equal stages.
    ramp = (64, 73, 82, 91, 101, 110, 119, 128)
    random_ltd = sum(2 * layer(seq, seq) + 2 * layer(k, k) + head
                     for k in ramp) / 8
    full_ends = 0.1 * bert + 0.8 * vanilla + 0.1 * bert
    sctd = vanilla + bert / 10  # a full pass every 10th step
    want = dict(bert=bert, vanilla=vanilla, random_ltd=random_ltd,
                full_ends=full_ends, sctd=sctd)
    names = dict(bert="bert_tiny", vanilla="token_drop_bert_tiny",
                 **{v: f"token_drop_bert_tiny_{v}"
                    for v in ("random_ltd", "full_ends", "sctd")})
    for key, name in names.items():
        task = exp_factory.get_exp_config(name).task
        assert flops.config_train_flops(task) == pytest.approx(
            3 * batch * want[key], rel=1e-12), name
        assert flops.config_train_flop_ratio(task) == pytest.approx(
            want[key] / bert, rel=1e-12), name
    # At these shapes the variants save less than at BERT-base's: the head
    # and the full layers weigh more.
    assert [round(want[k] / bert, 4) for k in (
        "vanilla", "random_ltd", "full_ends", "sctd")] == [
        0.7952, 0.8841, 0.8362, 0.8952]


def test_train_flops_sum_counts_a_schedule_step_by_step():
    # A ramp 4 -> 8 over 10 steps (stages start at steps 0 and 6 of 10), with
    # a full pass on every 4th step: counted by hand, one step at a time.
    vanilla = FULL + TRANSITION + DROPPED + FULL + HEAD_FLOPS
    schedule = ((0.0, 4), (0.6, 8))
    per_step = [vanilla] * 6 + [BERT] * 4
    full_pass = [BERT if (s + 1) % 4 == 0 else 0 for s in range(10)]
    kwargs = dict(**SIZES4, **HEAD, keep_k_schedule=schedule,
                  consistency_interval=4, schedule_steps=10)
    for steps in (0, 1, 5, 6, 7, 10):
        want = 3 * (sum(per_step[:steps]) + sum(full_pass[:steps]))
        assert flops.train_flops_sum(steps=steps, **kwargs) == pytest.approx(
            want), steps
    # The average is wrong at step 5 (it charges the ramp's dear end early),
    # right over the whole run.
    average = flops.train_flops(**SIZES4, **HEAD, keep_k_schedule=schedule,
                                consistency_interval=4)
    assert 5 * average > flops.train_flops_sum(steps=5, **kwargs) * 1.05
    assert 10 * average == pytest.approx(
        flops.train_flops_sum(steps=10, **kwargs), rel=0.05)
    # Past the run's end the last stage goes on.
    assert flops.train_flops_sum(steps=12, **kwargs) == pytest.approx(
        3 * (sum(per_step) + 2 * BERT + sum(full_pass) + BERT))
    # No schedule: steps x the per-step figure.
    assert flops.train_flops_sum(
        steps=7, schedule_steps=10, **SIZES4, **HEAD,
        token_keep_k=4) == pytest.approx(7 * 3 * vanilla)


def test_config_train_flops_sum_reads_the_run_length():
    from official.core import exp_factory
    import token_dropping  # noqa: F401  (registers the experiments)
    params = exp_factory.get_exp_config("token_drop_bert_tiny_full_ends")
    params.trainer.train_steps = 1000
    schedule = params.task.model.encoder.get().keep_k_schedule
    assert [tuple(s.as_dict().values()) for s in schedule] == [
        (0.0, 128), (0.1, 64), (0.9, 128)]
    batch = params.task.train_data.global_batch_size
    sizes = dict(seq_length=128, hidden_size=128, num_layers=4,
                 inner_dim=512, vocab_size=8000, max_predictions_per_seq=20)
    bert = 3 * batch * flops.pretraining_flops(**sizes)
    vanilla = 3 * batch * flops.pretraining_flops(**sizes, token_keep_k=64)
    assert flops.config_train_flops_sum(params, 100) == pytest.approx(
        100 * bert)
    assert flops.config_train_flops_sum(params, 500) == pytest.approx(
        100 * bert + 400 * vanilla)
    params.task.keep_k_schedule_steps = 500  # fractions of another length
    assert flops.config_train_flops_sum(params, 500) == pytest.approx(
        50 * bert + 400 * vanilla + 50 * bert)
