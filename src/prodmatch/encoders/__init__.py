"""Models that turn postings into L2-normalised vectors (or, for phash, 64-bit codes)."""
