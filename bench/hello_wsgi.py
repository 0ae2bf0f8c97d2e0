"""B0-http: the smallest WSGI app, served by the same gunicorn.conf.py as Canvas, to measure what gunicorn itself
can answer on this machine. It reads the request body, as /v1/event must, and answers a body shaped like the
real one.

    gunicorn -c gunicorn.conf.py bench.hello_wsgi:application
"""

BODY = b'{"id":1,"duplicate":false}'
HEADERS = [("Content-Type", "application/json"), ("Content-Length", str(len(BODY)))]


def application(environ, start_response):
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if length:
        environ["wsgi.input"].read(length)
    start_response("200 OK", HEADERS)
    return [BODY]
