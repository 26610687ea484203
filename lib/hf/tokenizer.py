"""Our SentencePiece model as a `tokenizers` JSON that transformers loads as-is.

The conversion mirrors how SentencePiece encodes with our training settings (identity
normalisation, dummy prefix, kept whitespace, BPE, byte fallback, user-defined symbols):

* normalizer ``Prepend("▁") + Replace(" ", "▁")``: SentencePiece's dummy prefix and whitespace
  escape. tokenizers normalises each stretch of text between special tokens separately, so the
  text after ``<|user|>`` gets its own dummy prefix, exactly like ``encode_chat`` (which calls
  ``sp.encode`` on each message).
* BPE merges ranked by the score of the merged piece: SentencePiece merges the best-scoring
  adjacent pair whose concatenation is a piece; listing every split of every piece, best result
  first, makes tokenizers do the same. No whitespace pre-split: SentencePiece runs BPE over the
  whole escaped string (its pieces never cross a word start anyway) and splitting on "▁" would
  forbid the whitespace-only pieces our tokenizer allows ("▁▁"). Byte fallback as in SentencePiece.
* user-defined symbols (domain terms, "▁MPI" and "MPI"): SentencePiece cuts them out greedily,
  leftmost-longest, before BPE. Here a Split pre-tokenizer isolates them with an alternation
  ordered longest first, and ``ignore_merges`` makes an isolated symbol its one piece.
  (They cannot be added tokens: tokenizers would run the dummy-prefix normaliser over their text
  too, turning "MPI" into "▁MPI".) ``ignore_merges`` also emits any other segment that is a whole
  vocabulary piece directly; ``stuck_pieces`` checks that SentencePiece would build each such
  piece from its characters as well, so nothing changes.
* control symbols and pad/unk/bos/eos as special added tokens.

Two intended differences, both on text nobody writes: transformers turns the literal text
"<|user|>" or "<s>" into the special token, while ``Tokenizer.encode`` never does (pass
``split_special_tokens=True`` to transformers to get our behaviour); and ``Tokenizer.encode``
writes a literal U+2581 as its byte pieces, where tokenizers reads it as a space marker.
"""
from __future__ import annotations

from sentencepiece import sentencepiece_model_pb2 as sp_pb2

import json

from lib.core.errors import UserError
from lib.tokenizer import BOS, CHAT_MARKERS, EOS, META_KEY, PAD, UNK, Tokenizer

NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6
SPACE = "\u2581"

# <bos> [<|system|> text <|end|>] (<|user|> text <|end|> <|assistant|> text <|end|>)*  -- lib/tokenizer/chat.py
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] not in ['system', 'user', 'assistant'] %}"
    "{{ raise_exception('roles must be system, user or assistant') }}"
    "{% endif %}"
    "{{ '<|' + message['role'] + '|>' + message['content'] + '<|end|>' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}"
)


def parse_model(model_bytes: bytes) -> sp_pb2.ModelProto:
    proto = sp_pb2.ModelProto()
    proto.ParseFromString(model_bytes)
    return proto


def check_convertible(proto: sp_pb2.ModelProto) -> None:
    """Refuse SentencePiece settings the tokenizers JSON below would not reproduce exactly."""
    spec, norm = proto.trainer_spec, proto.normalizer_spec
    problems = []
    if spec.model_type != sp_pb2.TrainerSpec.BPE:
        problems.append("model_type is not BPE")
    if norm.name != "identity" or norm.precompiled_charsmap:
        problems.append(f"normalization is {norm.name!r}, not identity")
    if norm.remove_extra_whitespaces:
        problems.append("remove_extra_whitespaces is on")
    if not norm.add_dummy_prefix or not norm.escape_whitespaces:
        problems.append("add_dummy_prefix/escape_whitespaces are off")
    if spec.treat_whitespace_as_suffix:
        problems.append("treat_whitespace_as_suffix is on")
    if (spec.pad_id, spec.unk_id, spec.bos_id, spec.eos_id) != (PAD, UNK, BOS, EOS):
        problems.append("special ids are not pad=0 unk=1 bos=2 eos=3")
    if [proto.pieces[4 + i].piece for i in range(len(CHAT_MARKERS))] != list(CHAT_MARKERS):
        problems.append("chat markers are not ids 4..7")
    if problems:
        raise UserError("tokenizer cannot be converted to the Hugging Face format: " + "; ".join(problems)
                        + " (it was not trained by lib.tokenizer.build.train_tokenizer)")


def _merges(proto: sp_pb2.ModelProto) -> list[list[str]]:
    """Every split of a normal piece into two normal pieces, best-scoring merged piece first."""
    normal = {p.piece: (i, p.score) for i, p in enumerate(proto.pieces) if p.type == NORMAL}
    merges = []
    for piece, (pid, score) in normal.items():
        for cut in range(1, len(piece)):
            left, right = piece[:cut], piece[cut:]
            if left in normal and right in normal:
                merges.append((-score, pid, normal[left][0], normal[right][0], left, right))
    merges.sort()
    return [[left, right] for *_, left, right in merges]


def _added(content: str, token_id: int) -> dict:
    return {"id": token_id, "content": content, "single_word": False, "lstrip": False, "rstrip": False,
            "normalized": False, "special": True}


def _escape(text: str) -> str:
    """Escape for the Oniguruma regex the Split pre-tokenizer compiles."""
    return "".join("\\" + c if c in ".^$|?*+()[]{}\\-/#" else c for c in text)


def _base_json(model_bytes: bytes) -> dict | None:
    """A base model's tokenizer (tokenizer.source: base) is already a tokenizers JSON: it is
    exported as it is, less our ``hpc_lm`` section; None for a SentencePiece model."""
    if not model_bytes.lstrip()[:1] == b"{":
        return None
    data = json.loads(model_bytes)
    data.pop(META_KEY, None)
    return data


def _special_pieces(model_bytes: bytes) -> dict:
    """bos/eos/unk/pad token strings of either kind of tokenizer."""
    if _base_json(model_bytes) is None:
        pieces = list(parse_model(model_bytes).pieces)
        return {"bos_token": pieces[BOS].piece, "eos_token": pieces[EOS].piece, "unk_token": pieces[UNK].piece,
                "pad_token": pieces[PAD].piece}
    tok = Tokenizer(model_bytes)
    ids = {"bos_token": tok.bos_id, "eos_token": tok.eos_id, "unk_token": tok.unk_id, "pad_token": tok.pad_id}
    return {k: tok.piece(i) for k, i in ids.items() if i >= 0}


def tokenizer_json(model_bytes: bytes) -> dict:
    """The ``tokenizer.json`` (tokenizers library format) equivalent to our SentencePiece model."""
    base = _base_json(model_bytes)
    if base is not None:
        return base
    proto = parse_model(model_bytes)
    check_convertible(proto)
    pieces = list(proto.pieces)
    added = [_added(p.piece, i) for i, p in enumerate(pieces) if p.type in (CONTROL, UNKNOWN)]
    symbols = sorted((p.piece for p in pieces if p.type == USER_DEFINED), key=lambda s: (-len(s), s))
    bos = pieces[BOS].piece
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": SPACE},
            {"type": "Replace", "pattern": {"String": " "}, "content": SPACE},
        ]},
        "pre_tokenizer": {"type": "Split", "behavior": "Isolated", "invert": False,
                          "pattern": {"Regex": "|".join(_escape(s) for s in symbols)}} if symbols else None,
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": bos, "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {bos: {"id": bos, "ids": [BOS], "tokens": [bos]}},
        },
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": SPACE}, "content": " "},
            {"type": "ByteFallback"},
            {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0},
        ]},
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": pieces[UNK].piece,
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": True,
            "byte_fallback": True,
            "ignore_merges": True,  # a whole user symbol segment is one piece (see the module doc)
            "vocab": {p.piece: i for i, p in enumerate(pieces)},
            "merges": _merges(proto),
        },
    }


def tokenizer_config(model_bytes: bytes, max_len: int) -> dict:
    """``tokenizer_config.json``: special tokens, BOS added by default, the chat template."""
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",  # load tokenizer.json as written, no rebuild
        "model_max_length": max_len,
        **_special_pieces(model_bytes),
        "add_bos_token": True,
        "add_eos_token": False,
        "clean_up_tokenization_spaces": False,
        "padding_side": "left",
        "chat_template": CHAT_TEMPLATE,
        "additional_special_tokens": list(CHAT_MARKERS),  # transformers 5 reads it as extra_special_tokens
    }


def special_tokens_map(model_bytes: bytes) -> dict:
    return {**_special_pieces(model_bytes), "additional_special_tokens": list(CHAT_MARKERS)}


def stuck_pieces(model_bytes: bytes) -> list[str]:
    """Normal pieces that SentencePiece's BPE, run on the piece's own characters, would not
    rebuild. ``ignore_merges`` (needed so an isolated user symbol becomes its one piece) emits a
    segment that is a whole vocabulary piece directly; that equals SentencePiece exactly when this
    list is empty. SentencePiece merges the best-scoring adjacent pair whose concatenation is a
    piece, leftmost first on ties -- replayed here on each piece. A base tokenizer is exported
    as its own tokenizer.json: nothing to check."""
    if _base_json(model_bytes) is not None:
        return []
    proto = parse_model(model_bytes)
    score = {p.piece: p.score for p in proto.pieces if p.type == NORMAL}
    stuck = []
    for piece in score:
        symbols = list(piece)
        while len(symbols) > 1:
            best = None
            for i in range(len(symbols) - 1):
                s = score.get(symbols[i] + symbols[i + 1])
                if s is not None and (best is None or s > best[0]):
                    best = (s, i)
            if best is None:
                break
            i = best[1]
            symbols[i:i + 2] = [symbols[i] + symbols[i + 1]]
        if symbols != [piece]:
            stuck.append(piece)
    return stuck
