"""Production server: `gunicorn -c gunicorn.conf.py canvas.wsgi:application`. Every value can be set from the
environment, so one file serves production, the benchmark and the tests."""

import os
import shutil
import tempfile

from canvas.buffering_worker import buffering_worker

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
# gthread: each worker answers many requests at once on threads, which the ingest group commit needs to
# gather concurrent events into one transaction. One worker per core keeps the GIL from being shared.
# Buffering: the worker's event loop receives each request whole before a thread takes it, so that slow clients
# hold no thread. A request head must arrive within GUNICORN_HEAD_TIMEOUT seconds (else the connection is closed),
# and its whole body within GUNICORN_BODY_TIMEOUT seconds of the head, however slowly it comes (else 408). Bodies
# above GUNICORN_MAX_BUFFERED_BODY bytes are not read: the app's limits are lower (500 KB for /v1/batch). A worker
# holds about GUNICORN_MAX_BUFFERED_BYTES of requests still arriving at most; past it, large ones wait.
worker_class = buffering_worker(
    head_timeout=float(os.environ.get("GUNICORN_HEAD_TIMEOUT", 10)),
    body_timeout=float(os.environ.get("GUNICORN_BODY_TIMEOUT", 10)),
    max_buffered_body=int(os.environ.get("GUNICORN_MAX_BUFFERED_BODY", 1024 * 1024)),
    max_buffered_bytes=int(os.environ.get("GUNICORN_MAX_BUFFERED_BYTES", 64 * 1024 * 1024)),
)
workers = int(os.environ.get("GUNICORN_WORKERS", os.cpu_count() or 2))
# Threads wait for their group commit: enough of them keep a loaded worker busy (docs/performance.md#gunicorn-threads).
threads = int(os.environ.get("GUNICORN_THREADS", 32))
# A worker whose loop stops turning this long is restarted.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 30))
graceful_timeout = 20
keepalive = 5
# Bounded headers: a flood of headers is refused by gunicorn before Django sees it.
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190
accesslog = os.environ.get("GUNICORN_ACCESSLOG") or None
errorlog = "-"
# gunicorn's control socket lives at one path per user (~/.gunicorn/gunicorn.ctl): two servers on one host
# would fight over it, and nothing here uses it.
control_socket_disable = True
loglevel = os.environ.get("GUNICORN_LOGLEVEL", "info")
# Hides tokens in the access and error logs (a query string, the Basic auth user): docs/operations.md.
logger_class = "canvas.observability.ScrubbingGunicornLogger"

# Prometheus: each worker writes its samples to files here and /metrics adds them up across workers.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", os.path.join(tempfile.gettempdir(), f"canvas-metrics-{os.getpid()}"))


def on_starting(server):
    directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    shutil.rmtree(directory, ignore_errors=True)
    os.makedirs(directory, exist_ok=True)


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
