"""Customer pages of the storage app: snapshots, restore downloads, prune preview."""
