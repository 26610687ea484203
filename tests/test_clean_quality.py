"""Clean: each quality, repetition, link-list and language rule on constructed inputs."""
from __future__ import annotations

import pytest

from lib.clean import quality
from lib.clean.config import CleanParams
from lib.clean.dedup import NearDuplicateIndex, minhash
from lib.clean.language import detect
from lib.clean.text import prose
from tests.hpc_text import GOOD, SENTENCES

P = CleanParams()


def check(text: str, p: CleanParams = P, link_chars: int = 0):
    body = prose(text)
    words = body.split()
    for rule in (lambda: quality.link_list(len("".join(text.split())), link_chars, p),
                 lambda: quality.length(len(text.split()), p),
                 lambda: quality.language(body, p),
                 lambda: quality.gopher_quality(body, words, p),
                 lambda: quality.repetition(body, words, p)):
        failed = rule()
        if failed:
            return failed[0]
    return None


def test_good_document_passes_every_rule():
    assert check(GOOD) is None
    code_heavy = GOOD + "\n\n```c\n" + "x[i] = y[i] + z[i];\n" * 40 + "```"
    assert check(code_heavy) is None  # repeated code lines are not prose repetition


@pytest.mark.parametrize("text,reason", [
    ("Too short to learn anything from.", "too_short"),
    (GOOD + " " + "word " * 250_000, "too_long"),
    (" ".join(f"a{i % 10} of to be the" for i in range(40)), "mean_word_length"),
    ("pneumonoultramicroscopicsilicovolcanoconiosis of the and is " * 20, "mean_word_length"),
    (GOOD + " " + " ".join(f"{i}+{i}={2 * i};" for i in range(200)), "alpha_ratio"),
    (GOOD + " " + " ".join(f"#tag{i} ..." for i in range(30)), "symbol_ratio"),
    (" ".join(s.replace("the ", "").replace("The ", "") for s in SENTENCES).replace(" of ", " ")
     .replace(" to ", " ").replace(" and ", " ").replace(" that ", " ").replace(" with ", " "),
     "stop_words"),
    ("\n".join(f"- {s}" for s in SENTENCES), "bullet_lines"),
    ("\n".join(s[:-1] + "..." for s in SENTENCES), "ellipsis_lines"),
    ("\n".join(SENTENCES + ["Subscribe to our newsletter today and save."] * 8), "dup_lines"),
    ("\n\n".join(["\n".join(f"Step {k}: {SENTENCES[k % 12]}" for k in range(i, i + 5))
                  for i in range(0, 30, 5)] + ["Thanks for reading."] * 5), "dup_paragraphs"),
    (GOOD + " " + "the cache the cache " * 60, "top_ngram"),
    (" ".join(SENTENCES[:8]) + " " + " ".join(SENTENCES[:8]), "dup_ngrams"),
    ("Le calcul parall\u00e8le utilise plusieurs processeurs pour r\u00e9soudre un probl\u00e8me "
     "plus vite. Les processus MPI \u00e9changent des messages et les threads OpenMP partagent "
     "la m\u00e9moire du n\u0153ud. " * 6, "language"),
])
def test_each_rule_fires(text, reason):
    assert check(text) == reason


def test_link_list_rule_and_thresholds_come_from_params():
    assert check(GOOD, link_chars=len("".join(GOOD.split())) * 2 // 3) == "link_list"
    assert check(GOOD, CleanParams(max_link_ratio=0.9), link_chars=len(GOOD) * 2 // 3) is None
    assert check("The cache is close to the core and fast.", CleanParams(min_words=3)) is None


def test_language_detection():
    assert detect(GOOD)[0] == "en"
    assert detect("Der Speicher wird von den Threads gemeinsam genutzt und ist nicht verteilt.")[0] == "de"
    assert detect("El proceso env\u00eda los datos a los otros procesos para que se usen.")[0] == "es"


def test_minhash_similarity_tracks_overlap_and_index_finds_near_duplicates():
    a = GOOD
    b = GOOD.replace("several levels", "many levels")
    c = " ".join(reversed(SENTENCES)) + " A different closing remark about compilers and flags."
    sa, sb, sc = (minhash(t, 5, 128, 7) for t in (a, b, c))
    assert (sa == minhash(a, 5, 128, 7)).all()  # deterministic
    assert (sa == sb).mean() > 0.8 > (sa == sc).mean()
    index = NearDuplicateIndex(128, 16, 0.8)
    assert index.query_insert(sa) is None
    assert index.query_insert(sc) is None
    hit = index.query_insert(sb)
    assert hit is not None and hit[0] == 0 and hit[1] > 0.8
    assert (minhash(a, 5, 128, 8) != sa).any()  # the seed matters


@pytest.mark.parametrize("key,value,needle", [
    ("lsh_bands", 7, "must divide minhash_perm"),
    ("min_alpha_ratio", 1.5, "between 0 and 1"),
    ("language", "xx", "must be one of"),
    ("max_top_ngram_ratio", {"two": 0.2}, "n-gram size"),
    ("min_wrods", 3, "did you mean 'min_words'"),
])
def test_bad_clean_params_are_one_clear_error(key, value, needle):
    from lib.core.params import ParamsError, from_mapping
    with pytest.raises(ParamsError, match=needle):
        from_mapping(CleanParams, {key: value}, "params.yaml: clean")
