"""The end-to-end pipeline: `intra demo` runs data, training, evaluation, export, pack and ranking
in one command on the built-in synthetic world."""
