"""The data layer: the shard format (``shards``), packing documents into shards (``pack``), the
batches a model reads -- seeded training windows (``windows``) and their prefetcher
(``prefetch``), fixed validation windows (``val_windows``), SFT examples and batches (``sft``) --
and the one ``Batch`` type they all yield (``batch``)."""
