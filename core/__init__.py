"""The shared core, used by the web, the worker and the CLI alike: the Capillary and LINE
clients, what linecap keeps in Redis, its errors, logs and metrics. It imports none of them."""
