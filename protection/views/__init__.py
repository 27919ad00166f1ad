"""Customer pages of the protection app: machines, groups, replication settings."""
