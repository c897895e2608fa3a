"""Bulk import: register people from a CSV, one row per task, INSTORE then LINE."""
