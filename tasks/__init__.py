"""The tasks, grouped by feature: `entry.py` of each feature declares its Celery tasks, thin
entry points over the plain functions beside them."""
