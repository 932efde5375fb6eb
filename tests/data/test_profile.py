"""build_pretraining_data(profile=...): stage times that change nothing."""

import os

import pytest

from data_testdata import bert_format, tiny_documents, write_text
from token_dropping.data import BuildProfile, PrepareDataConfig
from token_dropping.data import build_pretraining_data, format_profile
from token_dropping.data import build_profile


def _config(files, **kwargs):
    return PrepareDataConfig(
        input_files=files, vocab_size=300, seq_length=32,
        max_predictions_per_seq=5, num_train_shards=2, **kwargs)


def _bytes(directory):
    return {n: open(os.path.join(directory, n), "rb").read()
            for n in os.listdir(directory) if n != "manifest.json"}


@pytest.mark.parametrize("output_format", ["static", "text"])
def test_profile_times_every_stage_and_changes_no_byte(tmp_path,
                                                       output_format):
    documents = tiny_documents(30, seed=9)
    documents[0][0] = "Café naïve Straße, déjà vu."  # Multi-byte UTF-8.
    files = write_text(tmp_path / "docs.txt", bert_format(documents))
    config = _config(files, output_format=output_format)
    profile = BuildProfile()
    build_pretraining_data(config, str(tmp_path / "profiled"), profile)
    build_pretraining_data(config, str(tmp_path / "plain"))
    assert _bytes(tmp_path / "profiled") == _bytes(tmp_path / "plain")

    measured = profile.as_dict()
    assert measured["built"]
    assert measured["text_bytes"] == sum(
        len(s.encode("utf-8")) for d in documents for s in d)
    stages = measured["stages"]
    expected = set(build_profile.STAGES) - {"workers"} - (
        {"mask"} if output_format == "text" else set())
    assert set(stages) == expected
    # Exclusive times: together no more than the build's wall time.
    assert sum(s["seconds"] for s in stages.values()) <= (
        measured["wall_seconds"])
    assert measured["cpu_seconds"] > 0
    table = format_profile(measured)
    assert all(f"\n{name} " in table for name in expected)
    assert "MB per CPU-second (per core)" in table.splitlines()[0]


def test_a_reused_dataset_profiles_nothing(tmp_path):
    files = write_text(tmp_path / "docs.txt", bert_format(tiny_documents(8)))
    build_pretraining_data(_config(files), str(tmp_path / "out"))
    profile = BuildProfile()
    build_pretraining_data(_config(files), str(tmp_path / "out"), profile)
    assert not profile.as_dict()["built"]
    assert "nothing was built" in format_profile(profile.as_dict())
