"""Training: images with expert labels, volunteer vote counts and pseudo-labels in, a fine-tuned or self-supervised
backbone out (data, losses, the galaxy model, fine-tuning, pretraining, evaluation, torchrun launch)."""
