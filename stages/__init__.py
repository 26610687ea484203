"""One thin script per DVC stage in dvc.yaml, run as ``python -m stages.<name>``; and
``export.py``, an optional command that is not in dvc.yaml (Hugging Face copies of both models)."""
