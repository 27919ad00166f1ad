"""Writes of the protection app, one module per concern: ``machines`` (protection state,
moves, groups), ``policy`` (replication settings), ``jobs`` (the replication job state
machine), ``dispatch`` (beat's dispatcher of due replications) and ``reconcile`` (repairs
after a lost message or a dead worker)."""
