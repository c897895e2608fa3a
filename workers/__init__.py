"""The Celery side: the app and its settings, the task registry, how a task is declared and
what happens when it fails, the messages linecap publishes, and the worker's start-up."""
