"""The Ray engine (`--engine ray`): Ray for a command (`session`), reading each input file with dupfind's own
reader (`read`), encoding on a pool of actors into the work folder's embedding store (`encode`) and mining with
the inverted-file index on the cluster (`mine`)."""
