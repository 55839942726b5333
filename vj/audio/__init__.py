"""Audio sources (live, file, synthetic) and streaming analysis."""
