"""The paper: token importance, selection, the drop layout, keep_k schedules, the encoder, its config, the FLOP model."""
