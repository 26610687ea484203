"""Building a tokenizer (the tokenizer stage's work): SentencePiece BPE trained on the corpus with
fixed special ids and the domain terms as user symbols, or a base model's tokenizer extended with
the domain terms it splits (``tokenizer.source: base``). The ``Tokenizer`` that reads the result
is ``lib.tokenizer.Tokenizer``."""
from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import sentencepiece as spm

from lib.core.errors import UserError
from lib.core.params import check
from lib.tokenizer import BOS, CHAT_MARKERS, EOS, META, META_KEY, PAD, UNK
from lib.tokenizer.sample import sample_texts

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
    # sentence_bytes, and a seeded sample of input_sentence_size pieces (0 = keep all)
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
    sample = sample_texts(texts, params.input_sentence_size, params.sentence_bytes, seed)
    return train_on_sample(sample, params, terms, seed)


def train_on_sample(sample: list[str], params: TokenizerParams, terms: Sequence[str], seed: int) -> bytes:
    """Train on pieces already sampled (``lib.tokenizer.sample``): the tokenizer stage draws them
    from the corpus on the data engine."""
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
