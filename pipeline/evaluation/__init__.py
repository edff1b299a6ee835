"""Scoring predictions against the truth: mask metrics, per-frame tables and summaries, comparison pictures."""
