"""Shared plumbing every layer may use: errors, paths and atomic writes, checkpoint reading."""
