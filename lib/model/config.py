"""``ModelConfig``: the ``pretrain.model`` params section and the config.json stored next to the
weights, so a checkpoint always says how to rebuild its model. New fields default to the
original model (rope, rmsnorm, swiglu, no qk_norm, no softcap), so old config.json files load unchanged."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from lib.core.params import check

POSITIONS = ("rope", "learned", "sinusoidal", "none")
NORMS = ("rmsnorm", "layernorm")
MLPS = ("swiglu", "gelu", "relu2")


@dataclass
class ModelConfig:
    n_layer: int = 4
    n_head: int = 4
    n_kv_head: int = 4          # = n_head: MHA; 1: MQA; in between: GQA
    d_model: int = 128
    d_ff: int = 352
    max_seq_len: int = 128
    rope_theta: float = 10000.0
    dropout: float = 0.0        # on the embeddings and each residual branch
    attn_dropout: float | None = None  # on attention weights; None: = dropout. 0 keeps SDPA's fused
                                # kernels (CPU flash attention has no dropout: it falls back to matmuls)
    tie_embeddings: bool = True
    positions: str = "rope"     # rope | learned | sinusoidal | none
    norm: str = "rmsnorm"       # rmsnorm | layernorm
    mlp: str = "swiglu"         # swiglu | gelu | relu2 (relu(x)^2, not gated: two matrices like gelu)
    init_std: float = 0.02
    qk_norm: bool = False       # RMSNorm (with a gain) on each head's queries and keys, before RoPE
    norm_eps: float | None = None  # the norms' epsilon; None: RMSNorm 1e-6, LayerNorm 1e-5 (a base model sets its own)
    zero_init_proj: bool = False  # attention-output and MLP-down projections start at zero: each
                                # block starts as the identity (an init choice only, not an architecture)
    logit_softcap: float = 0.0  # > 0: logits = cap * tanh(logits / cap); 0: off
    base_width: int = 0         # the d_model the rates and init_std are tuned at (muP-style width scaling,
                                # see width_mult); 0: no scaling (the original model, and imported bases)
    vocab_size: int = 0  # filled from the tokenizer, not from params

    def __post_init__(self):
        check(self.n_layer >= 1, "n_layer", "must be >= 1")
        check(self.n_head >= 1 and self.d_model % self.n_head == 0, "n_head",
              f"must divide d_model ({self.d_model})")
        check(self.n_kv_head >= 1 and self.n_head % self.n_kv_head == 0, "n_kv_head",
              f"must divide n_head ({self.n_head})")
        check(self.d_ff >= 1, "d_ff", "must be >= 1")
        check(self.max_seq_len >= 1, "max_seq_len", "must be >= 1")
        check(self.positions in POSITIONS, "positions", f"must be one of {', '.join(POSITIONS)}")
        check(self.norm in NORMS, "norm", f"must be one of {', '.join(NORMS)}")
        check(self.mlp in MLPS, "mlp", f"must be one of {', '.join(MLPS)}")
        check(self.positions != "rope" or (self.d_model // self.n_head) % 2 == 0, "d_model",
              "d_model / n_head must be even for RoPE")
        check(self.positions != "sinusoidal" or self.d_model % 2 == 0, "d_model", "must be even for sinusoidal")
        check(self.rope_theta > 0, "rope_theta", "must be > 0")
        check(0.0 <= self.dropout < 1.0, "dropout", "must be in [0, 1)")
        check(self.attn_dropout is None or 0.0 <= self.attn_dropout < 1.0, "attn_dropout", "must be in [0, 1) or null")
        check(self.init_std > 0, "init_std", "must be > 0")
        check(self.norm_eps is None or 0 < self.norm_eps < 1, "norm_eps", "must be in (0, 1) or null")
        check(self.logit_softcap >= 0, "logit_softcap", "must be >= 0 (0: off)")
        check(self.base_width >= 0, "base_width", "must be >= 0 (0: no width scaling; else the d_model "
              "the rates and init_std were tuned at)")

    @property
    def width_mult(self) -> float:
        """d_model / base_width: how much wider than its tuning shape this model is (1: as tuned, or
        scaling off). muP's rules (Yang et al., "Tensor Programs V", 2022, table 3 with the output
        multiplier of its appendix) then keep the best rates where they were tuned: hidden matrices
        start at init_std / sqrt(width_mult) and train (under AdamW) at lr / width_mult, the logits
        are multiplied by 1 / width_mult. Embeddings, gains and the output matrix, whose Adam rates
        muP keeps, train at their rates times sqrt(width_mult): the measured rule (lib.train.optim)."""
        return self.d_model / self.base_width if self.base_width else 1.0

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_head

    def to_dict(self) -> dict:
        return asdict(self)
