"""Evaluation: the validation pass shared by pretrain, SFT and eval (``validation``), LAMBADA as
lm-evaluation-harness computes it (``lambada``), and the ``eval:`` params (``params``)."""
