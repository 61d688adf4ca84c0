"""Reading and writing tables of questions and pairs, atomically."""
