"""The OpenAI-compatible HTTP server (``hpc-lm serve``), its continuous-batching engine and its
web chat page (static/)."""
