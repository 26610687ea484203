"""The model: the GPT (``gpt``) from its layers (``layers``) as ``ModelConfig`` says (``config``),
hand-written backward passes for its elementwise ops (``fused``), LoRA adapters (``lora``),
vocabulary growth for a base model (``vocab``), and the checkpoint format (``checkpoint``, its
only owner)."""
