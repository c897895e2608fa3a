"""The `linecap` command line: one entry point for operators, over the same settings and tasks."""
