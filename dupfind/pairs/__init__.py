"""Pairs of duplicates from vectors: mining, search, indexes, clusters, dedupe and re-ranking."""
