"""WSGI entry point: `gunicorn -c gunicorn.conf.py canvas.wsgi:application`."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "canvas.settings")

application = get_wsgi_application()
