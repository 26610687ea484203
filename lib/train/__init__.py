"""Training: the loop, distributed data parallelism, and the pretrain and SFT recipes' params."""
