"""Hugging Face interchange: export our checkpoints as a transformers Llama (or Qwen3) model
directory (``export``, ``convert``, ``tokenizer``), import such a directory back or start from a
base model (``import_``, ``base``), check an export against our model (``verify``), and the
task files lm-evaluation-harness reads to score it offline (``tasks/``; lib/eval/harness.py
writes and runs them).

Export and import of our own format write and read plain JSON + safetensors, so the pipeline
does not depend on transformers; it is a dev dependency, imported (inside the functions) only
to read a base model's tokenizer or a GGUF file (``base``, ``import_``) and to check an export
against our model (``verify``). The parity tests (tests/test_hf*.py) load the exported
directory through transformers and lm-evaluation-harness and compare with our own numbers.
"""
