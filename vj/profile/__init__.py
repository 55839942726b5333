"""Latency traces and statistics from the clock's stage stamps."""
