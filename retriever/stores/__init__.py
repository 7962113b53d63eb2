"""Vector stores: ids (int64) -> normalised vectors, searched by inner product."""
