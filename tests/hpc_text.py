"""Plain, well-formed HPC prose shared by the cleaning tests: passes every quality filter."""

SENTENCES = [
    "The memory hierarchy of a modern node has several levels of cache.",
    "Each level is larger and slower than the one that comes before it.",
    "Blocking a loop keeps the working set small enough to stay in cache.",
    "MPI ranks exchange halo cells with their neighbours after every step.",
    "OpenMP threads share the address space of the process that created them.",
    "A reduction combines partial results from all threads into one value.",
    "Vector units apply the same instruction to several data elements at once.",
    "The scheduler decides which thread runs each chunk of the iteration space.",
    "First touch placement puts a page on the node of the thread that writes it.",
    "Collective operations involve every process of a communicator together.",
    "Profiling tools show where the time goes before any tuning is attempted.",
    "Bandwidth bound kernels benefit from fewer and larger memory transfers.",
]
GOOD = " ".join(SENTENCES)
