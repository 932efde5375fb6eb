"""study/scaling.py: a study model's way of dropping at BERT-base and
-large, against the FLOP model given those sizes by hand."""


import pytest

from token_dropping.model import flops
from token_dropping.study import driver as study
from token_dropping.study import runs as study_runs
from token_dropping.study import scaling
from helpers import study_params

BASE = dict(seq_length=512, hidden_size=768, num_layers=12, inner_dim=3072,
            vocab_size=30522, max_predictions_per_seq=76)
LARGE = dict(BASE, hidden_size=1024, num_layers=24, inner_dim=4096)


# Full sequences for the first and last tenth, half kept between.
FULL_ENDS = [(0.0, 512), (0.1, 256), (0.9, 512)]
RAMP = [(i / 8, k) for i, k in enumerate(
    [256, 293, 329, 366, 402, 439, 475, 512])]


def _specs(*models):
    return {s.name: s for s in study.model_specs(study.StudyConfig(
        models=("bert",) + models))}




def _ratio(sizes, **layout):
    return flops.train_flops(**sizes, **layout) / flops.train_flops(**sizes)


@pytest.mark.parametrize("name, base, large", [
    # The paper's layout: half kept, layers n/2-1 to n-1 at every depth.
    ("token_drop", dict(token_keep_k=256, drop_start_layer=5,
                        drop_end_layer=11),
     dict(token_keep_k=256, drop_start_layer=11, drop_end_layer=23)),
    # A quarter kept (32 of 128): 128 of 512.
    ("token_drop.token_keep_k=32", dict(token_keep_k=128, drop_start_layer=5,
                                        drop_end_layer=11),
     dict(token_keep_k=128, drop_start_layer=11, drop_end_layer=23)),
    # Two layers below the paper's start at 8 layers: three below at 12,
    # six at 24.
    ("token_drop.drop_layers=1-7", dict(token_keep_k=256, drop_start_layer=2,
                                        drop_end_layer=11),
     dict(token_keep_k=256, drop_start_layer=5, drop_end_layer=23)),
    # The remedies at the layer-1 layout: each size's registered remedy
    # (its own schedule or consistency interval), with the layout scaled.
    ("token_drop_bert_mini_full_ends.drop_layers=1-7",
     dict(token_keep_k=256, drop_start_layer=2, drop_end_layer=11,
          keep_k_schedule=FULL_ENDS),
     dict(token_keep_k=256, drop_start_layer=5, drop_end_layer=23,
          keep_k_schedule=FULL_ENDS)),
    ("token_drop_bert_mini_sctd.drop_layers=1-7",
     dict(token_keep_k=256, drop_start_layer=2, drop_end_layer=11,
          consistency_interval=10),
     dict(token_keep_k=256, drop_start_layer=5, drop_end_layer=23,
          consistency_interval=10)),
    # random-LTD: every layer but the first and last, kept length ramped
    # from half to all of 512 in eight stages.
    ("token_drop_bert_mini_random_ltd",
     dict(token_keep_k=256, drop_start_layer=1, drop_end_layer=11,
          selection="random_per_layer", keep_k_schedule=RAMP),
     dict(token_keep_k=256, drop_start_layer=1, drop_end_layer=23,
          selection="random_per_layer", keep_k_schedule=RAMP)),
])
def test_a_layout_at_base_and_large_is_the_flop_models(name, base, large):
    spec = _specs(name)[name]
    params = study_params(spec)
    assert scaling.ceiling_at(spec, params, "base") == pytest.approx(
        _ratio(BASE, **base))
    assert scaling.ceiling_at(spec, params, "large") == pytest.approx(
        _ratio(LARGE, **large))


def test_at_the_studys_own_size_it_is_the_studys_ceiling():
    specs = _specs("token_drop", "token_drop.token_keep_k=96.drop_layers=2-6",
                   "token_drop_bert_mini_full_ends", "token_drop_random")
    bert = study_runs.flops_per_step(study_params(specs["bert"]))
    for name, spec in specs.items():
        if name == "bert":
            assert scaling.ceiling_at(spec, study_params(spec), "base") is None
            continue
        assert scaling.ceiling_at(spec, study_params(spec), "mini") == (
            pytest.approx(study_runs.flops_per_step(study_params(spec)) / bert))


def test_a_variant_without_a_larger_experiment_has_no_ratio_there():
    spec = _specs("token_drop")["token_drop"]
    assert scaling.ceiling_at(spec, study_params(spec), "huge") is None
