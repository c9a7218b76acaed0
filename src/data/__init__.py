"""Pretraining and fine-tuning data: text preparation, record generation, record I/O, datasets."""
