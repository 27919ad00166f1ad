"""Writes and side effects of the storage app, one module per concern."""
