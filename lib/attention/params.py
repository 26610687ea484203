"""The ``attention:`` section of params.yaml: which attention the model uses and, in the
``external`` mode, where the attention weights come from.

Only the *names* of environment variables live here (endpoint, model, key); their values are read
from the environment when a provider is built, so no secret is ever in params.yaml, DVC's
params tracking, a run key or a log.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lib.core.params import PARAMS_FILE, check, from_mapping, read_params

MODES = ("learned", "external")
PROVIDERS = ("local", "http")
ON_BAD_REPLY = ("error", "uniform")


@dataclass
class HttpParams:
    base_url_env: str = "HPCLM_ATTN_BASE_URL"   # e.g. https://api.openai.com/v1 (…/chat/completions is appended)
    model_env: str = "HPCLM_ATTN_MODEL"         # the model name the endpoint serves
    api_key_env: str = "HPCLM_ATTN_API_KEY"     # sent as a Bearer token; unset: no Authorization header

    def __post_init__(self):
        for key in ("base_url_env", "model_env", "api_key_env"):
            value = getattr(self, key)
            check(bool(value) and value.replace("_", "").isalnum(), key,
                  f"must be the NAME of an environment variable (letters, digits, _), got {value!r}")


@dataclass
class AttentionParams:
    mode: str = "learned"                 # learned: the model's own attention | external: weights from a provider
    provider: str = "local"               # local: a trained model of ours | http: an OpenAI-compatible endpoint
    cache_dir: str = ".cache/attention"   # score cache shared by training and sampling (git-ignored)
    on_bad_reply: str = "error"           # a reply still bad after retries: error | uniform (causal average)
    max_requests: int | None = 2000       # provider requests per run (HTTP attempts); 0: cache only; null: no cap
    timeout_s: float = 60.0               # per HTTP request
    retries: int = 3                      # extra attempts on 429, 5xx, timeouts and malformed replies
    backoff_s: float = 1.0                # first retry delay, doubled each attempt (Retry-After wins, capped)
    max_backoff_s: float = 60.0
    local_model: str = "models/pretrain"  # model directory for the local provider
    http: HttpParams = field(default_factory=HttpParams)

    def __post_init__(self):
        check(self.mode in MODES, "mode", f"must be one of {', '.join(MODES)}")
        check(self.provider in PROVIDERS, "provider", f"must be one of {', '.join(PROVIDERS)}")
        check(self.on_bad_reply in ON_BAD_REPLY, "on_bad_reply", f"must be one of {', '.join(ON_BAD_REPLY)}")
        check(self.max_requests is None or self.max_requests >= 0, "max_requests", "must be >= 0 or null")
        check(self.timeout_s > 0, "timeout_s", "must be > 0")
        check(self.retries >= 0, "retries", "must be >= 0")
        check(0 <= self.backoff_s <= self.max_backoff_s, "backoff_s", "must be >= 0 and <= max_backoff_s")
        check(bool(self.cache_dir), "cache_dir", "must not be empty")

    def info(self) -> dict:
        """What a saved model records in its config.json ("attention": ...), so generate/chat and
        eval run it the way it was trained. Names only: no environment values, no secrets."""
        if self.mode == "learned":
            return {"mode": "learned"}
        out = {"mode": self.mode, "provider": self.provider}
        if self.provider == "local":
            out["local_model"] = self.local_model
        return out

    def key(self) -> str:
        """What a training run depends on (for the resume run key): every field, no env values."""
        return json.dumps(asdict(self), sort_keys=True)


def load_attention_params(path: str | Path = PARAMS_FILE) -> AttentionParams:
    """The ``attention:`` section, or the defaults (learned attention) when the file has none, so
    params files written before this mode existed keep working."""
    data = read_params(path)
    if data.get("attention") is None:
        return AttentionParams()
    return from_mapping(AttentionParams, data["attention"], f"{path}: attention")


def attention_for_model(model_dir: str | Path, path: str | Path = PARAMS_FILE) -> AttentionParams:
    """The attention a trained model must run with: the mode (and provider) its config.json
    records, the other settings (cache, limits, env var names) from params.yaml's section (the
    defaults when there is no params file or section). A model without a record is learned."""
    from lib.core.io import read_json
    params = load_attention_params(path) if Path(path).exists() else AttentionParams()
    recorded = read_json(Path(model_dir) / "config.json").get("attention") or {"mode": "learned"}
    if not isinstance(recorded, dict) or recorded.get("mode") not in MODES:
        from lib.core.errors import UserError
        raise UserError(f"{model_dir}/config.json: 'attention' must be a mapping with mode one of {', '.join(MODES)}")
    changes = {k: recorded[k] for k in ("mode", "provider", "local_model") if k in recorded}
    return AttentionParams(**{**asdict(params), "http": params.http, **changes})
