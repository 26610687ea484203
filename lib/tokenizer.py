"""The one tokenizer wrapper every stage uses, and SentencePiece BPE training.

Special ids are fixed so that every artifact agrees on them: pad=0, unk=1, bos=2, eos=3, then
the chat role markers as control symbols (4..7). Control symbols are never produced by encoding
text -- a document that happens to contain "<|user|>" cannot forge a role marker -- so the chat
template inserts them by id.
"""
from __future__ import annotations

import hashlib
import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import sentencepiece as spm

from lib.errors import UserError
from lib.params import check

PAD, UNK, BOS, EOS = 0, 1, 2, 3
CHAT_MARKERS = ("<|system|>", "<|user|>", "<|assistant|>", "<|end|>")
MODEL_FILE = "tokenizer.model"
VOCAB_FILE = "tokenizer.vocab"


@dataclass
class TokenizerParams:
    vocab_size: int = 2048
    character_coverage: float = 0.9995
    byte_fallback: bool = True
    split_digits: bool = True
    user_symbols: list[str] = field(default_factory=list)
    num_threads: int = 2

    def __post_init__(self):
        check(self.vocab_size >= 256 + len(CHAT_MARKERS) + 4 or not self.byte_fallback,
              "vocab_size", "must be at least 264 when byte_fallback is on (256 byte pieces)")
        check(0.9 <= self.character_coverage <= 1.0, "character_coverage", "must be in [0.9, 1.0]")
        check(self.num_threads >= 1, "num_threads", "must be >= 1")


class Tokenizer:
    """Encode/decode text with a trained SentencePiece model and the project's fixed ids."""

    def __init__(self, model_bytes: bytes):
        self._sp = spm.SentencePieceProcessor(model_proto=model_bytes)
        self.sha256 = hashlib.sha256(model_bytes).hexdigest()
        self.vocab_size = self._sp.get_piece_size()
        self.pad_id, self.unk_id, self.bos_id, self.eos_id = PAD, UNK, BOS, EOS
        self.special = {m: self._sp.piece_to_id(m) for m in CHAT_MARKERS}
        expected = {m: 4 + i for i, m in enumerate(CHAT_MARKERS)}
        if self.special != expected or self._sp.bos_id() != BOS or self._sp.eos_id() != EOS:
            raise UserError("tokenizer model does not have the project's fixed special ids; retrain it "
                            "with `dvc repro tokenizer`")

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Tokenizer":
        path = Path(path)
        model = path / MODEL_FILE if path.is_dir() else path
        if not model.exists():
            raise UserError(f"{model}: tokenizer model not found; run `dvc repro tokenizer` first")
        return cls(model.read_bytes())

    def encode(self, text: str) -> list[int]:
        return self._sp.encode(text)

    def encode_batch(self, texts: Sequence[str], num_threads: int = 1) -> list[list[int]]:
        return self._sp.encode(list(texts), num_threads=num_threads)

    def decode(self, ids: Iterable[int]) -> str:
        return self._sp.decode([int(i) for i in ids])

    def piece(self, token_id: int) -> str:
        return self._sp.id_to_piece(int(token_id))

    def marker(self, name: str) -> int:
        """Id of a chat marker by role name: 'system', 'user', 'assistant' or 'end'."""
        return self.special[f"<|{name}|>"]


def train_tokenizer(sentences: Iterable[str], params: TokenizerParams, terms: Sequence[str],
                    seed: int) -> bytes:
    """Train SentencePiece BPE on ``sentences`` and return the serialized model.

    ``terms`` become user-defined symbols so domain words such as MPI_Allreduce stay whole.
    The same sentences, params and seed give byte-identical model bytes.
    """
    symbols = []
    for term in list(params.user_symbols) + list(terms):
        if not term or term in CHAT_MARKERS or any(c.isspace() for c in term):
            continue
        # "▁term" matches the term after a space (the usual case), "term" after punctuation.
        for symbol in ("\u2581" + term, term):
            if symbol not in symbols:
                symbols.append(symbol)
    model = io.BytesIO()
    spm.set_random_generator_seed(seed)  # sampling of input sentences
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(sentences),
            model_writer=model,
            model_type="bpe",
            vocab_size=params.vocab_size,
            character_coverage=params.character_coverage,
            byte_fallback=params.byte_fallback,
            split_digits=params.split_digits,
            pad_id=PAD, unk_id=UNK, bos_id=BOS, eos_id=EOS,
            control_symbols=list(CHAT_MARKERS),
            user_defined_symbols=symbols,
            # identity normalisation + kept whitespace: decode(encode(text)) == text
            normalization_rule_name="identity",
            remove_extra_whitespaces=False,
            allow_whitespace_only_pieces=True,
            split_by_whitespace=True,
            max_sentence_length=1 << 16,
            num_threads=params.num_threads,
            minloglevel=2,
        )
    except RuntimeError as err:
        msg = str(err)
        if "Vocabulary size" in msg or "vocab_size" in msg:
            raise UserError(f"params.yaml: tokenizer.vocab_size={params.vocab_size} is too large for this "
                            f"corpus ({msg.strip()}); lower it or add documents") from None
        raise
    return model.getvalue()
