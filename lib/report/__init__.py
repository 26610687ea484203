"""The run comparison report: collecting two runs' figures (``data``), rendering them
(``render``) and the command (``cli``; ``hpc-lm report``, or ``python -m lib.report``)."""
