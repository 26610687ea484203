"""Training: the loop, its data windows, distributed setup, and the pretrain and SFT recipes."""
