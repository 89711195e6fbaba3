"""Parts of bench/upstream_roundtrip.py: Neuronpedia's real code against ours."""
