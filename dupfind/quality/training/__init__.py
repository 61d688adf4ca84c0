"""Fine-tuning a model on labeled question pairs.

`recipes` says how to train, `splits` carves the held-out split, `negatives` finds a hard negative per
duplicate pair, `holdout` scores a model on the held-out split, `trainer` runs sentence-transformers'
trainer and writes the model, `card` writes its model card.
"""
