"""Hugging Face interchange: export our checkpoints as a transformers Llama model directory,
import such a directory back, and the files lm-evaluation-harness needs to score it offline.

Nothing here imports transformers: export and import write and read plain JSON + safetensors,
so the pipeline does not depend on it. The parity tests (tests/test_hf*.py) load the exported
directory through transformers and lm-evaluation-harness and compare with our own numbers.
"""
