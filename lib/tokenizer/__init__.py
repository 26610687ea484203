"""The one tokenizer wrapper every stage uses: a SentencePiece model we trained, or a base model's
``tokenizer.json`` extended with our domain terms (``tokenizer.source: base``). The package also
holds building one (``build``), its quality figures (``stats``) and the chat template with the
SFT loss mask and stop ids (``chat``).

A trained tokenizer's special ids are fixed so that every artifact agrees on them: pad=0, unk=1, bos=2, eos=3, then
the chat role markers as control symbols (4..7). Control symbols are never produced by encoding
text -- a document that happens to contain "<|user|>" cannot forge a role marker -- so the chat
template inserts them by id.

Round trip: identity normalisation, kept whitespace and byte fallback make
``decode(encode(text)) == text`` for any text, with one exception SentencePiece has by design:
a literal U+2581 ("▁") in the text reads as its whitespace marker and would decode as a space.
``encode`` therefore emits that character as its three UTF-8 byte pieces (see ``_encode_meta``).
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Iterable, Sequence

import sentencepiece as spm

from lib.core.errors import UserError

PAD, UNK, BOS, EOS = 0, 1, 2, 3
CHAT_MARKERS = ("<|system|>", "<|user|>", "<|assistant|>", "<|end|>")
MODEL_FILE = "tokenizer.model"
JSON_FILE = "tokenizer.json"   # a base model's tokenizer (tokenizer.source: base)
META_KEY = "hpc_lm"            # our section inside that tokenizer.json: special ids, added tokens
VOCAB_FILE = "tokenizer.vocab"
META = "\u2581"  # SentencePiece's whitespace marker
# Characters that, absent from the vocab, encode as byte pieces that merge with nothing; one of
# them is put in front of a segment to encode it without SentencePiece's dummy space prefix.
_SENTINELS = ("\x00", "\x01", "\x02", "\x03", "\ue000", "\ue001")


class Tokenizer:
    """The one wrapper: encode/decode with the project's special ids, whatever the backend.

    Two backends, told apart by the bytes themselves (so worker processes rebuild either from
    ``model_bytes``): a SentencePiece model trained here (``tokenizer.model``, fixed ids), or a
    base model's tokenizer as a ``tokenizers`` JSON (``tokenizer.json``) whose ``hpc_lm``
    section names its special ids and the tokens added for our domain (see ``extend_base``).
    """

    def __init__(self, model_bytes: bytes):
        self.model_bytes = model_bytes  # what worker processes rebuild the tokenizer from
        self.sha256 = hashlib.sha256(model_bytes).hexdigest()
        backend = _JsonBackend(model_bytes) if _is_json(model_bytes) else _SentencePieceBackend(model_bytes)
        self._backend = backend
        self.kind = backend.kind  # "sentencepiece" | "tokenizers"
        self.vocab_size = backend.vocab_size
        self.pad_id, self.unk_id, self.bos_id, self.eos_id = backend.pad_id, backend.unk_id, backend.bos_id, backend.eos_id
        self.special = backend.special
        self.base_vocab_size = backend.base_vocab_size  # ids below it are the base's, unchanged
        self.added = backend.added  # [{"id", "content", "base_ids"}]: tokens added to a base tokenizer

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Tokenizer":
        path = Path(path)
        if path.is_dir():
            json_path = path / JSON_FILE
            path = json_path if json_path.exists() and not (path / MODEL_FILE).exists() else path / MODEL_FILE
        if not path.exists():
            raise UserError(f"{path}: tokenizer model not found; run `dvc repro tokenizer` first")
        return cls(path.read_bytes())

    @property
    def file_name(self) -> str:
        """The name this tokenizer is stored under in a tokenizer directory."""
        return MODEL_FILE if self.kind == "sentencepiece" else JSON_FILE

    def encode(self, text: str) -> list[int]:
        return self._backend.encode(text)

    def encode_batch(self, texts: Sequence[str], num_threads: int = 1) -> list[list[int]]:
        return self._backend.encode_batch(texts, num_threads)

    def decode(self, ids: Iterable[int]) -> str:
        return self._backend.decode([int(i) for i in ids])

    def piece(self, token_id: int) -> str:
        return self._backend.piece(int(token_id))

    def marker(self, name: str) -> int:
        """Id of a chat marker by role name: 'system', 'user', 'assistant' or 'end'."""
        return self.special[f"<|{name}|>"]


def _is_json(data: bytes) -> bool:
    return data.lstrip()[:1] == b"{"


class _SentencePieceBackend:
    kind = "sentencepiece"
    added: list = []

    def __init__(self, model_bytes: bytes):
        self._sp = spm.SentencePieceProcessor(model_proto=model_bytes)
        self.vocab_size = self.base_vocab_size = self._sp.get_piece_size()
        self.pad_id, self.unk_id, self.bos_id, self.eos_id = PAD, UNK, BOS, EOS
        self.special = {m: self._sp.piece_to_id(m) for m in CHAT_MARKERS}
        expected = {m: 4 + i for i, m in enumerate(CHAT_MARKERS)}
        if self.special != expected or self._sp.bos_id() != BOS or self._sp.eos_id() != EOS:
            raise UserError("tokenizer model does not have the project's fixed special ids; retrain it "
                            "with `dvc repro tokenizer`")
        self._meta_ids = self._byte_ids(META)
        self._sentinel, self._sentinel_prefix = self._find_sentinel()

    def encode(self, text: str) -> list[int]:
        if META in text and self._sentinel:
            return self._encode_meta(text)
        return self._sp.encode(text)

    def encode_batch(self, texts: Sequence[str], num_threads: int = 1) -> list[list[int]]:
        out = self._sp.encode(list(texts), num_threads=num_threads)
        for i, text in enumerate(texts):
            if META in text and self._sentinel:  # rare: redo those few with the exact path
                out[i] = self._encode_meta(text)
        return out

    def decode(self, ids: list[int]) -> str:
        return self._sp.decode(ids)

    def piece(self, token_id: int) -> str:
        return self._sp.id_to_piece(token_id)

    def _encode_meta(self, text: str) -> list[int]:
        """Encode text holding literal U+2581: segments between them are encoded as usual, each
        U+2581 as its byte pieces. Segments after the first must not get the dummy space prefix,
        so each is encoded behind the sentinel, whose pieces are then dropped."""
        first, *rest = text.split(META)
        ids = self._sp.encode(first)
        n = len(self._sentinel_prefix)
        for segment in rest:
            ids += self._meta_ids
            if segment:
                seg = self._sp.encode(self._sentinel + segment)
                assert seg[:n] == self._sentinel_prefix, "sentinel merged with its neighbour"
                ids += seg[n:]
        return ids

    def _byte_ids(self, text: str) -> list[int]:
        ids = [self._sp.piece_to_id(f"<0x{b:02X}>") for b in text.encode("utf-8")]
        return ids if UNK not in ids else []  # a model without byte_fallback has no byte pieces

    def _find_sentinel(self) -> tuple[str, list[int]]:
        pieces = [self._sp.id_to_piece(i) for i in range(self.vocab_size)]
        for c in _SENTINELS:
            if self._meta_ids and self._byte_ids(c) and not any(c in p for p in pieces):
                return c, self._sp.encode(c)
        return "", []  # no byte pieces (byte_fallback off): U+2581 then decodes as a space


class _JsonBackend:
    """A base model's tokenizer through the ``tokenizers`` library. Special tokens in a document
    are encoded as plain text (``encode_special_tokens``), as SentencePiece control symbols are:
    a document cannot forge a role marker or an end of text."""

    kind = "tokenizers"

    def __init__(self, model_bytes: bytes):
        from tokenizers import Tokenizer as HFTokenizer
        data = json.loads(model_bytes)
        meta = data.pop(META_KEY, None)
        if not isinstance(meta, dict) or "special" not in meta:
            raise UserError(f"tokenizer.json has no '{META_KEY}' section; it was not written by the "
                            f"tokenizer stage (tokenizer.source: base); rerun `dvc repro tokenizer`")
        self._tok = HFTokenizer.from_str(json.dumps(data))
        self._tok.encode_special_tokens = True
        self.vocab_size = self._tok.get_vocab_size(with_added_tokens=True)
        special = meta["special"]
        self.pad_id, self.unk_id, self.bos_id, self.eos_id = (special[k] for k in ("pad", "unk", "bos", "eos"))
        self.special = {m: self._tok.token_to_id(m) for m in CHAT_MARKERS}
        if None in self.special.values():
            raise UserError("tokenizer.json lacks the chat markers; rerun `dvc repro tokenizer`")
        self.base_vocab_size = int(meta["base_vocab_size"])
        self.added = list(meta.get("added", []))

    def encode(self, text: str) -> list[int]:
        return self._tok.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: Sequence[str], num_threads: int = 1) -> list[list[int]]:
        return [e.ids for e in self._tok.encode_batch(list(texts), add_special_tokens=False)]

    def decode(self, ids: list[int]) -> str:
        return self._tok.decode(ids, skip_special_tokens=True)  # like SentencePiece's control symbols

    def piece(self, token_id: int) -> str:
        return self._tok.id_to_token(token_id)
