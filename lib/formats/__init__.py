"""Document formats, shared by the scrape and clean stages: one ``DocumentFormat`` record per
format in ``FORMATS`` (registry.py), the record and probe types (format.py) and the built-in
formats' byte signatures (signatures.py)."""
