"""Keeping linecap in step with LINE's follower list: the back-fill and the reconciliation."""
