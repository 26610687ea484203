"""The one tokenizer wrapper every stage uses, SentencePiece BPE training, and a base model's
tokenizer extended with our domain terms (``tokenizer.source: base``).

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
import io
import json
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import sentencepiece as spm

from lib.core.errors import UserError
from lib.core.params import check

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


SOURCES = ("train", "base")


@dataclass
class TokenizerParams:
    source: str = "train"    # train: SentencePiece on the corpus | base: pretrain.init's tokenizer + our terms
    vocab_size: int = 2048
    character_coverage: float = 0.9995
    byte_fallback: bool = True
    split_digits: bool = True
    user_symbols: list[str] = field(default_factory=list)
    num_threads: int = 2
    # Bounded memory on a large corpus: documents are cut at line ends into pieces of at most
    # sentence_bytes, and a seeded reservoir sample of input_sentence_size pieces (0 = keep all)
    # is trained on instead of the whole corpus.
    input_sentence_size: int = 100_000
    sentence_bytes: int = 2048

    def __post_init__(self):
        check(self.source in SOURCES, "source", f"must be one of {', '.join(SOURCES)}")
        check(self.vocab_size >= 256 + len(CHAT_MARKERS) + 4 or not self.byte_fallback,
              "vocab_size", "must be at least 264 when byte_fallback is on (256 byte pieces)")
        check(0.9 <= self.character_coverage <= 1.0, "character_coverage", "must be in [0.9, 1.0]")
        check(self.num_threads >= 1, "num_threads", "must be >= 1")
        check(self.input_sentence_size >= 0, "input_sentence_size", "must be >= 0 (0 = use every piece)")
        check(256 <= self.sentence_bytes <= 65536, "sentence_bytes", "must be in [256, 65536]")
        for s in self.user_symbols:
            check(bool(s) and not any(c.isspace() for c in s), "user_symbols",
                  f"{s!r} is empty or contains whitespace; a symbol must be one word")


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


def extend_base(tokenizer_json: str, special: dict, terms: Sequence[str]) -> tuple[bytes, dict]:
    """The base tokenizer with our chat markers (special) and the domain ``terms`` it splits
    added as new tokens after its own ids, which stay as they are. Each added token records the
    ids the base used for its text: the model's new embedding row starts as their mean.

    A term is added as "term" and " term" (after a space, the usual case in running text), the
    two forms SentencePiece gets as user symbols. Returns the ``tokenizer.json`` bytes (with
    our ``hpc_lm`` section) and figures for metrics."""
    from tokenizers import AddedToken, Tokenizer as HFTokenizer
    tok, base = HFTokenizer.from_str(tokenizer_json), HFTokenizer.from_str(tokenizer_json)
    tok.encode_special_tokens = base.encode_special_tokens = True
    base_size = tok.get_vocab_size(with_added_tokens=True)
    added: list[dict] = []

    def add(content: str, is_special: bool) -> None:
        base_ids = base.encode(content, add_special_tokens=False).ids  # the untouched base's pieces
        new = AddedToken(content, normalized=False, special=is_special)
        (tok.add_special_tokens if is_special else tok.add_tokens)([new])
        added.append({"id": tok.token_to_id(content), "content": content, "base_ids": base_ids})

    for marker in CHAT_MARKERS:
        if tok.token_to_id(marker) is None:
            add(marker, True)
    split_terms = []
    for term in dict.fromkeys(t for t in terms if t and not any(c.isspace() for c in t)):
        forms = [f for f in (term, " " + term) if tok.token_to_id(f) is None
                 and len(base.encode(f, add_special_tokens=False).ids) > 1]
        split_terms += [term] if forms else []
        for form in forms:
            add(form, False)
    data = json.loads(tok.to_str())
    data[META_KEY] = {"special": special, "base_vocab_size": base_size, "added": added}
    figures = {"base_vocab_size": base_size, "added_tokens": len(added), "terms_added": len(split_terms),
               "terms_already_whole": len(set(terms)) - len(split_terms)}
    return json.dumps(data, ensure_ascii=False, sort_keys=True).encode("utf-8"), figures


def training_sentences(texts: Iterable[str], max_bytes: int) -> Iterator[str]:
    """Cut documents into pieces of at most ``max_bytes`` UTF-8 bytes at line ends (a longer line
    after its last space), keeping the newlines so the tokenizer learns them. SentencePiece drops
    a sentence over its length limit, and samples by sentence -- so whole documents would make
    long documents vanish and the sample's memory unbounded."""
    for text in texts:
        piece, size = [], 0
        for line in text.splitlines(keepends=True):
            n = len(line.encode("utf-8"))
            if size + n > max_bytes and piece:
                yield "".join(piece)
                piece, size = [], 0
            while n > max_bytes:  # one overlong line (minified code, a table): cut after a space
                head = line.encode("utf-8")[:max_bytes].decode("utf-8", errors="ignore")
                cut = head.rfind(" ") + 1 or len(head)
                yield line[:cut]
                line = line[cut:]
                n = len(line.encode("utf-8"))
            piece.append(line)
            size += n
        if piece:
            yield "".join(piece)


def reservoir_sample(items: Iterable[str], size: int, seed: int) -> list[str]:
    """A uniform sample of ``size`` items in one pass and O(size) memory, kept in input order;
    ``size`` 0 keeps everything. Done here rather than by SentencePiece, whose sampler ignores
    ``set_random_generator_seed`` (a fresh process draws another sample: not reproducible)."""
    if size == 0:
        return list(items)
    rng = random.Random(seed)
    kept: list[tuple[int, str]] = []
    for i, item in enumerate(items):
        if i < size:
            kept.append((i, item))
        else:
            j = rng.randrange(i + 1)
            if j < size:
                kept[j] = (i, item)
    return [item for _, item in sorted(kept)]


def symbols_for(terms: Iterable[str]) -> list[str]:
    """User-defined symbols for domain terms: each as "▁term" (after a space, the usual case)
    and "term" (after punctuation or at a line start), deduplicated in first-seen order."""
    symbols: dict[str, None] = {}
    for term in terms:
        if not term or term in CHAT_MARKERS or META in term or any(c.isspace() for c in term):
            continue
        symbols.setdefault(META + term)
        symbols.setdefault(term)
    return list(symbols)


def train_tokenizer(texts: Iterable[str], params: TokenizerParams, terms: Sequence[str],
                    seed: int) -> bytes:
    """Train SentencePiece BPE on documents ``texts`` and return the serialized model.

    ``terms`` (and ``params.user_symbols``) become user-defined symbols so domain words such as
    MPI_Allreduce stay whole. The same texts, params and seed give byte-identical model bytes.
    """
    sample = reservoir_sample(training_sentences(texts, params.sentence_bytes), params.input_sentence_size, seed)
    model = io.BytesIO()
    spm.set_random_generator_seed(seed)  # for anything else random inside the trainer
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(sample),
            model_writer=model,
            model_type="bpe",
            vocab_size=params.vocab_size,
            character_coverage=params.character_coverage,
            byte_fallback=params.byte_fallback,
            split_digits=params.split_digits,
            pad_id=PAD, unk_id=UNK, bos_id=BOS, eos_id=EOS,
            control_symbols=list(CHAT_MARKERS),
            user_defined_symbols=symbols_for(list(params.user_symbols) + list(terms)),
            # identity normalisation + kept whitespace: decode(encode(text)) == text
            normalization_rule_name="identity",
            remove_extra_whitespaces=False,
            allow_whitespace_only_pieces=True,
            split_by_whitespace=True,
            max_sentence_length=params.sentence_bytes,
            input_sentence_size=0,  # sampled above, reproducibly
            num_threads=params.num_threads,
            minloglevel=2,
        )
    except RuntimeError as err:
        msg = str(err).strip()
        if "smaller than required_chars" in msg:
            raise UserError(f"params.yaml: tokenizer.vocab_size={params.vocab_size} is too small for the "
                            f"characters and symbols it must hold ({msg}); raise it or lower "
                            f"tokenizer.character_coverage") from None
        if "Vocabulary size" in msg or "vocab_size" in msg:
            raise UserError(f"params.yaml: tokenizer.vocab_size={params.vocab_size} is too large for this "
                            f"corpus ({msg}); lower it or add documents") from None
        raise
    return model.getvalue()
