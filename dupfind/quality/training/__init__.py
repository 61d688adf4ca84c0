"""Fine-tuning a model on labeled question pairs: the bi-encoder (`trainer`) and the re-ranker (`reranker`).

What both share: `recipes` says how to train the bi-encoder, `splits` carves the held-out split, `negatives`
mines the hard negatives, `holdout` scores a model on the held-out split and selects the best checkpoint,
`fitting` runs sentence-transformers' trainer and writes the model through a temporary directory, `card`
lays out the model card, `weights` stores the weights in float16.
"""
