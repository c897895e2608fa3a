"""Read by gunicorn from the working directory: metrics bookkeeping for its worker processes.

The master prepares the Prometheus multiprocess directory before forking, so every worker
writes into the same one and GET /metrics sums them all; a dead worker's live gauges are
dropped when the master reaps it.
"""

from workers.metrics import forget_process, prepare_multiprocess_dir


def on_starting(server) -> None:
    prepare_multiprocess_dir("web")


def child_exit(server, worker) -> None:
    forget_process(worker.pid)
