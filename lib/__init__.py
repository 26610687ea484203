"""Shared, tested code for the pipeline stages in ``stages/``."""
