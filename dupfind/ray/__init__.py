"""The Ray engine: read, encode and mine on a Ray cluster."""
