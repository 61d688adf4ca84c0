"""One module per command: each checks its options, calls the library and writes the result."""
