"""Reads of the clouds app, one module per concern: ``agents`` (the agent pages and the
dashboard's agent figures), ``clouds`` (Manage Clouds), ``downloads`` (Download links)."""
