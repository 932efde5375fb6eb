"""The step-time and memory benchmark of BERT against token dropping, and its report."""
