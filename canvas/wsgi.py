"""WSGI entry point: `gunicorn -c gunicorn.conf.py canvas.wsgi:application`."""

import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "canvas.settings")

django_application = get_wsgi_application()

from events.fast_lane import FastLane  # noqa: E402 - needs the apps loaded by get_wsgi_application

# An ordinary POST /v1/event is answered by the fast lane; every other request goes to Django.
application = FastLane(django_application)

# Everything loaded so far (Django, the apps, settings, URL patterns: ~90,000 objects) lives as long as the worker.
# Frozen, the cyclic garbage collector stops walking it: under /v1/event load a full collection took 60 ms,
# holding every thread of the worker, about every ten seconds.
gc.freeze()
