"""Clean: each quality, repetition, link-list and language rule on constructed inputs."""
from __future__ import annotations

import pytest

from lib.clean import filters
from lib.clean.boilerplate import strip_repeats
from lib.clean.config import CleanParams
from lib.clean.dedup import NearDuplicateIndex, minhash
from lib.clean.language import detect
from lib.clean.text import prose
from tests.hpc_text import GOOD, SENTENCES

P = CleanParams(min_relevance=0.0)  # each rule on its own; off_topic has its own test below


def check(text: str, p: CleanParams = P, link_chars: int = 0):
    """The reason the pipeline would give: repeated lines stripped first, then every filter."""
    text, _, removed = strip_repeats(text)
    failed = filters.first_failure(filters.Doc(text, prose(text), link_chars, removed), p)
    return failed[0] if failed else None


def test_good_document_passes_every_rule():
    assert check(GOOD) is None
    code_heavy = GOOD + ("\n\n```c\n" + LISTING + "```") * 6
    assert check(code_heavy) is None  # braces, operators, repeated "}": code, not junk


# a stencil loop nest: few letters, many symbols, short lines that repeat ("}", "for (...)")
LISTING = """#pragma omp parallel for collapse(2) schedule(static)
for (int i = 1; i < n - 1; i++) {
    for (int j = 1; j < m - 1; j++) {
        b[i][j] = 0.25 * (a[i-1][j] + a[i+1][j] + a[i][j-1] + a[i][j+1]);
    }
}
"""


@pytest.mark.parametrize("block", [
    "x[i] = y[i] + z[i];\n" * 40,                                   # one line over and over
    "".join(f"{'QUJDRA' * 30}{i:04d}==\n" for i in range(10)),       # base64 data
    "var a=1;" * 80 + "\n",                                            # minified, one line
])
def test_code_junk_is_caught_by_the_code_rule(block):
    assert check(GOOD + "\n\n```\n" + block + "```") == "code_junk"


@pytest.mark.parametrize("text,reason", [
    ("Too short to learn anything from.", "too_short"),
    (GOOD + " " + "word " * 1_000_000, "too_long"),
    (" ".join(f"a{i % 10} of to be the" for i in range(40)), "mean_word_length"),
    ("pneumonoultramicroscopicsilicovolcanoconiosis of the and is " * 20, "mean_word_length"),
    (GOOD + " " + " ".join(f"{i}+{i}={2 * i};" for i in range(200)), "alpha_ratio"),
    (GOOD + " " + " ".join(f"#tag{i} ..." for i in range(30)), "symbol_ratio"),
    (" ".join(s.replace("the ", "").replace("The ", "") for s in SENTENCES).replace(" of ", " ")
     .replace(" to ", " ").replace(" and ", " ").replace(" that ", " ").replace(" with ", " "),
     "stop_words"),
    ("\n".join(f"- {s}" for s in SENTENCES), "bullet_lines"),
    ("\n".join(s[:-1] + "..." for s in SENTENCES), "ellipsis_lines"),
    ("\n".join(SENTENCES[:3] + ["Subscribe to our newsletter today and save."] * 30), "boilerplate"),
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
    assert check(GOOD, CleanParams(max_link_ratio=0.9, min_relevance=0.0),
                 link_chars=len(GOOD) * 2 // 3) is None
    assert check("The cache is close to the core and fast.",
                 CleanParams(min_words=3, min_relevance=0.0)) is None


def test_repeated_lines_are_stripped_not_fatal():
    """A manual that repeats its header on every page keeps its text, minus the repeats."""
    pages = [f"# Slurm Guide\n\n{s}\n\nPage footer: SchedMD" for s in SENTENCES]
    text, lines, chars = strip_repeats("\n\n".join(pages) + "\n\n```\n}\n}\n```")
    assert text.count("# Slurm Guide") == 1 and text.count("Page footer") == 1
    assert lines == 2 * (len(SENTENCES) - 1) and chars > 0
    assert text.endswith("```\n}\n}\n```")  # repeated code lines are code, not boilerplate
    assert check("\n\n".join(pages)) is None


def test_filters_list_is_the_only_source_of_reasons():
    from lib.clean.pipeline import reasons
    names = [f.__name__ for f in filters.FILTERS]
    assert filters.REASONS == tuple(names) and set(names) <= set(reasons())
    assert len(set(reasons())) == len(reasons())


def test_off_topic_on_by_default_and_zero_turns_it_off():
    doc = filters.Doc(GOOD, GOOD, relevance=0.5)
    assert filters.off_topic(doc, CleanParams()).startswith("0.50")
    assert filters.off_topic(doc, P) is None
    assert filters.off_topic(filters.Doc(GOOD, GOOD, relevance=12.0), CleanParams()) is None


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
    ("language", "xx", "must be a language code"),
    ("min_relevance", -1.0, "must be >= 0"),
    ("max_top_ngram_ratio", {"two": 0.2}, "n-gram size"),
    ("min_wrods", 3, "did you mean 'min_words'"),
])
def test_bad_clean_params_are_one_clear_error(key, value, needle):
    from lib.core.params import ParamsError, from_mapping
    with pytest.raises(ParamsError, match=needle):
        from_mapping(CleanParams, {key: value}, "params.yaml: clean")


def test_a_deck_is_judged_as_a_deck():
    """Slides of short bullets, numbers and chart labels: a letter share that fails prose
    (0.6) passes a deck (0.45); bullets are what a deck is made of."""
    bullets = "\n".join(f"- {s}" for s in SENTENCES)
    numbers = " ".join(f"{i}.{i} {2 * i}% 0.{i}" for i in range(60))  # a chart's labels: 0.49
    deck = bullets + "\n" + numbers
    text, _, removed = strip_repeats(deck)
    as_prose = filters.Doc(text, prose(text), 0, removed, relevance=50.0)
    as_deck = filters.Doc(text, prose(text), 0, removed, relevance=50.0, deck=True)
    assert filters.alpha_ratio(as_prose, P) is not None
    assert filters.alpha_ratio(as_deck, P) is None and filters.bullet_lines(as_deck, P) is None
    assert filters.first_failure(as_deck, P) is None


def test_a_code_page_is_judged_by_the_code_rule_only():
    """A source file's page (Doxygen's *_source.html): the prose rules have nothing to judge."""
    page = "# stencil.c\n\n" + ("```c\n" + LISTING + "```\n\n") * 8
    assert check(page) is None
    assert check("# app.min.js\n\n```js\n" + "var a=1;" * 200 + "\n```") == "code_junk"


def test_relevance_counts_context_terms_at_their_weight():
    """A manual made of HPC's everyday words (node, memory, buffer) scores a tenth of one that
    names the domain; a word in both lists counts as a domain term."""
    from lib.clean.relevance import relevance, term_weights
    weights = term_weights(["mpi", "node"], ["node", "memory", "buffer"], 0.1)
    assert weights == {"mpi": 1.0, "node": 1.0, "memory": 0.1, "buffer": 0.1}
    generic = "the memory buffer holds data " * 20      # 2 context terms in 5 words
    named = "the MPI_Send call sends data " * 20         # MPI_Send: "mpi" and "send"
    assert relevance(generic, weights) == 40.0          # 1000 * 0.1 * 2 / 5
    assert relevance(named, weights) == round(1000 * 1 / 6, 2)
    assert relevance("", weights) == 0.0
