"""Forms of the protection app: ``machines`` (the machine and group pages) and ``policy`` (the
replication settings form of a customer, group or machine). They validate input; the
services do the writes."""
