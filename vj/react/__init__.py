"""Modulation: audio features and parameters → generator controls."""
