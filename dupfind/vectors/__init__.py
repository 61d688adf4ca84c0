"""Questions become vectors: models, encoders, backends, the embedding cache and pair scorers."""
