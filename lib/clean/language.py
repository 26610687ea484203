"""Language identification with py3langid (langid.py's model, shipped inside the package: no
download at run time).

Chosen by measurement on the real-document test bed (tests/real_docs.py, 213 documents): the
stop-word share this project used before kept 135 of 159 English manuals (Doxygen source pages,
Sphinx API pages and Slurm command references have few function words) and took 5 of 17 Japanese
pages for English; py3langid kept 159 of 159 and rejected 54 of 54 non-English documents, in
7 ms per document. lingua-language-detector scored the same but needs 14 s to load its models.
"""
from __future__ import annotations

from functools import cache

from py3langid.langid import MODEL_FILE, LanguageIdentifier

_SAMPLE_CHARS = 20_000  # langid is linear in the text; a long manual's start tells its language


@cache
def identifier() -> LanguageIdentifier:
    """The model (about 1 s to load): loaded once per process, before the workers fork."""
    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def languages() -> tuple[str, ...]:
    return tuple(identifier().nb_classes)


def detect(text: str) -> tuple[str, float]:
    """(ISO 639-1 code, probability) of the text's language."""
    lang, prob = identifier().classify(text[:_SAMPLE_CHARS])
    return lang, float(prob)
