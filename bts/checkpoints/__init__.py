"""Checkpoints: the project's format and the import of the original releases."""
