"""Evaluation: the validation pass shared by pretrain and eval, and LAMBADA."""
