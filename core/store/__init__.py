"""Everything linecap keeps in Redis: applied events, per-user order and locks, the rate
budget, dead letters, account-link nonces and import markers."""
