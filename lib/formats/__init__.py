"""Document formats: one ``DocumentFormat`` record per format (registry.py) and the byte
signatures that recognise them (signatures.py), shared by the scrape and clean stages."""
