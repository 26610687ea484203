"""The `clean:` section of params.yaml (the dataclass is the schema; every filter on by default)."""
from __future__ import annotations

from dataclasses import dataclass, field

from lib.clean.language import languages
from lib.core.params import check


# Words that name the domain: rare outside HPC writing, each counts in full.
DOMAIN_TERMS = (
    "hpc mpi openmp omp cuda gpu gpus simd avx avx2 avx512 sse numa slurm parallelism vectorization "
    "vectorize vectorized communicator allreduce alltoall mpirun mpiexec srun sbatch salloc squeue "
    "openacc opencl sycl nvcc nccl nvshmem infiniband rdma pthread pthreads blas lapack scalapack "
    "petsc fft fftw hwloc flops gflops tflops datatype recv nonblocking multithreaded "
    "supercomputer supercomputing").split()
# Words HPC text uses all the time but so does any software manual (an XSLT processor's nodes and
# memory, a compressor's buffers, a crypto library's messages): each counts as CONTEXT_WEIGHT of a
# domain term, so a manual made only of them stays below the threshold.
CONTEXT_TERMS = (
    "cpu cpus thread threads parallel process processes rank ranks node nodes cluster core cores "
    "cache caches memory bandwidth latency compiler kernel kernels vector job jobs scheduler "
    "batch collective broadcast barrier synchronization performance compute topology socket "
    "sockets benchmark task tasks partition buffer send message messages blocking lock atomic "
    "queue").split()


@dataclass
class CleanParams:
    # Gopher-style quality (on the prose outside code blocks)
    min_words: int = 50                   # fewer words: too_short
    max_words: int = 1_000_000            # more words: too_long (a standard has 260,000)
    min_mean_word_length: float = 3.0
    max_mean_word_length: float = 10.0
    min_alpha_ratio: float = 0.6          # alphabetic share of non-space characters
    min_deck_alpha_ratio: float = 0.45    # the same for a slide deck (bullets, numbers, labels)
    max_code_junk_share: float = 0.3      # fenced code: share of characters in blobs/repeats
    max_symbol_ratio: float = 0.1         # '#' and '...' per word
    min_stop_words: int = 2               # distinct words of {the, be, to, of, and, that, have, with}
    max_bullet_line_ratio: float = 0.9
    max_ellipsis_line_ratio: float = 0.3
    # repetition: repeated lines are removed first (boilerplate.py); then a document that was
    # mostly repetition is rejected, and the Gopher n-gram checks run on what remains
    max_boilerplate_share: float = 0.5    # share of characters in repeated lines
    max_top_ngram_ratio: dict[str, float] = field(
        default_factory=lambda: {"2": 0.20, "3": 0.18, "4": 0.16})
    max_dup_ngram_ratio: dict[str, float] = field(
        default_factory=lambda: {"5": 0.45, "6": 0.42, "7": 0.39, "8": 0.36, "9": 0.33, "10": 0.30})
    # navigation pages and language
    max_link_ratio: float = 0.5           # share of characters inside link anchors
    language: str = "en"                  # ISO 639-1 code, as py3langid names it
    min_language_score: float = 0.5       # py3langid's probability of that language
    # domain relevance: domain terms per 1,000 words (code included; a context term counts as
    # context_weight of one), recorded per document; 0 keeps all. 3 sits between the off-topic
    # manuals and licences of the real-document test bed and its HPC manuals: README, cleaning
    min_relevance: float = 3.0
    domain_terms: list[str] = field(default_factory=lambda: list(DOMAIN_TERMS))
    context_terms: list[str] = field(default_factory=lambda: list(CONTEXT_TERMS))
    context_weight: float = 0.1
    # deduplication: exact, then MinHash/LSH near-duplicates over word shingles
    near_dup_threshold: float = 0.8       # estimated Jaccard similarity that counts as duplicate
    shingle_size: int = 5
    minhash_perm: int = 128
    lsh_bands: int = 16                   # minhash_perm must be a multiple of lsh_bands
    minhash_seed: int = 1337
    unwrap_lines: bool = True             # text/Markdown: join hard-wrapped lines into paragraphs
    # PDF layout
    pdf_repeat_share: float = 0.5         # a top/bottom line on this share of pages is a running header
    pdf_repeat_min_pages: int = 3
    workers: int = 2                      # processes; output is identical for any count
    raw_dir: str = "data/raw"
    out_dir: str = "data/clean"

    def __post_init__(self) -> None:
        check(self.min_words >= 0, "min_words", "must be >= 0")
        check(self.max_words > self.min_words, "max_words", "must be greater than min_words")
        check(0 < self.min_mean_word_length < self.max_mean_word_length, "min_mean_word_length",
              "must be > 0 and below max_mean_word_length")
        for key in ("min_alpha_ratio", "min_deck_alpha_ratio", "max_code_junk_share",
                    "max_symbol_ratio", "max_bullet_line_ratio",
                    "max_ellipsis_line_ratio", "max_boilerplate_share", "max_link_ratio",
                    "min_language_score", "near_dup_threshold", "pdf_repeat_share"):
            check(0.0 <= getattr(self, key) <= 1.0, key, "must be between 0 and 1")
        for key in ("max_top_ngram_ratio", "max_dup_ngram_ratio"):
            for n, ratio in getattr(self, key).items():
                check(n.isdigit() and 1 <= int(n) <= 20, f"{key}.{n}", "n-gram size must be 1..20")
                check(0.0 <= ratio <= 1.0, f"{key}.{n}", "must be between 0 and 1")
        check(self.language in languages(), "language",
              f"must be a language code py3langid knows ({', '.join(languages())})")
        check(self.min_relevance >= 0, "min_relevance", "must be >= 0 (0 keeps every document)")
        for key in ("domain_terms", "context_terms"):
            check(all(isinstance(t, str) and t for t in getattr(self, key)), key, "must be a list of words")
        check(0.0 <= self.context_weight <= 1.0, "context_weight", "must be between 0 and 1")
        check(1 <= self.shingle_size <= 20, "shingle_size", "must be 1..20")
        check(self.lsh_bands >= 1 and self.minhash_perm % self.lsh_bands == 0, "lsh_bands",
              f"must divide minhash_perm ({self.minhash_perm})")
        check(self.pdf_repeat_min_pages >= 2, "pdf_repeat_min_pages", "must be >= 2")
        check(1 <= self.workers <= 256, "workers", "must be between 1 and 256")
