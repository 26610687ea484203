"""Training: the loop as parts (``loop``) with its state and resumable state file (``state``),
progress lines (``log``), the LR schedules (``schedule``) and optimizers (``optim``) as registries,
distributed data parallelism (``distributed``), the training curves (``curves``), and the params
of pretrain and SFT (``params``, ``pretrain``, ``sft``)."""
