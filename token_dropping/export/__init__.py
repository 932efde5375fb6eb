"""A finished run as a plain Model Garden BERT, a SavedModel and a Hugging Face folder."""
