"""The model: the GPT, its layers, LoRA adapters, and the checkpoint format (its only owner)."""
