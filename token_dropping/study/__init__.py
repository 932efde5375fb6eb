"""Does token dropping pay: pretraining runs, the unigram floor, the fine-tuning probe, statistics and report."""
