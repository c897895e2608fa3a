"""Read by gunicorn from the working directory: metrics bookkeeping for its worker processes,
and a garbage-collector setting for each worker.

The master prepares the Prometheus multiprocess directory before forking, so every worker
writes into the same one and GET /metrics sums them all; a dead worker's live gauges are
dropped when the master reaps it.

After a worker has built the app, its long-lived objects (Flask, Celery, kombu, settings) are
moved out of the collector's reach with `gc.freeze()`: a full collection over them stalls
every thread of the worker, and they live as long as the worker anyway. The effect on the
receiver's tail latency is measured in docs/BENCHMARKS.md.
"""

import gc

from core.metrics import forget_process, prepare_multiprocess_dir


def on_starting(server) -> None:
    prepare_multiprocess_dir("web")


def child_exit(server, worker) -> None:
    forget_process(worker.pid)


def post_worker_init(worker) -> None:
    gc.collect()
    gc.freeze()
