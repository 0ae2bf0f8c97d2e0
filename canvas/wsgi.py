"""WSGI entry point: `gunicorn -c gunicorn.conf.py canvas.wsgi:application`."""

import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "canvas.settings")

django_application = get_wsgi_application()

from events.ingest.wsgi import IngestFrontEnd  # noqa: E402 - needs the apps loaded by get_wsgi_application

# POSTs to the ingest endpoints are answered by the front end; every other request goes to Django.
application = IngestFrontEnd(django_application)

# What is loaded so far lives as long as the worker: frozen, the cyclic collector stops walking it on every full
# collection (docs/performance.md#the-garbage-collector).
gc.freeze()
# A loaded worker holds a dozen parsed batches: collected less often, they are walked less often
# (docs/performance.md#the-garbage-collector). Garbage without cycles is still freed at once.
gc.set_threshold(20_000, 20, 100)
