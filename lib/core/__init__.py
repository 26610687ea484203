"""Plumbing every stage shares: user errors, the stage runner, atomic io, params, progress, runtime."""
