"""WSGI entry point: `gunicorn -c gunicorn.conf.py canvas.wsgi:application`."""

import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "canvas.settings")

django_application = get_wsgi_application()

from events.ingest.wsgi import IngestFrontEnd  # noqa: E402 - needs the apps loaded by get_wsgi_application

# POSTs to the ingest endpoints are answered by the front end; every other request goes to Django.
application = IngestFrontEnd(django_application)

# Everything loaded so far (Django, the apps, settings, URL patterns: ~90,000 objects) lives as long as the worker.
# Frozen, the cyclic garbage collector stops walking it: under /v1/event load a full collection took 60 ms,
# holding every thread of the worker, about every ten seconds.
gc.freeze()
# A /v1/batch request holds a parsed document of some thousand objects until it answers, and a loaded worker
# holds a dozen such requests at once. At the default thresholds (700, 10, 10) the collector walked those live
# objects again and again: collecting the youngest generation every 20,000 allocations instead, and the older
# ones more rarely, took 6-8% less server CPU per event under /v1/batch load and gave 3-4% more events per
# second (measured by turns, two workers on two cores; 100,000 gained nothing more). Garbage without cycles is
# freed at once all the same: only garbage in reference cycles waits longer.
gc.set_threshold(20_000, 20, 100)
