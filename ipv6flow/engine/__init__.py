"""Engines wire readers, decoders and Summaries together (no figures here)."""
