"""Training: continued pre-training, fine-tuning, the recipe grid and adapter transfer."""
