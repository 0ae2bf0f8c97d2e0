"""Refused events stored before tokens were hidden (events.tokens.secret.scrub) may hold one: hide it there too."""

import re

from django.db import migrations

from events.tokens import secret

# Payloads were cut to 4 KB before this release: a token cut at the end keeps most of its random part.
_CUT_AT_THE_END = re.compile(rf"{secret.PREFIX}[0-9A-Za-z]*\Z")
CUT_AT = 4 * 1024


def hide_tokens(apps, schema_editor):
    RejectedEvent = apps.get_model("events", "RejectedEvent")
    for refusal in RejectedEvent.objects.only("payload", "errors").iterator(chunk_size=1000):
        payload = secret.scrub(refusal.payload)
        if len(refusal.payload) >= CUT_AT:
            payload = _CUT_AT_THE_END.sub(f"{secret.PREFIX}…", payload)
        errors = [
            {name: secret.scrub(value) if isinstance(value, str) else value for name, value in problem.items()}
            if isinstance(problem, dict)
            else problem
            for problem in refusal.errors
        ]
        if payload != refusal.payload or errors != refusal.errors:
            RejectedEvent.objects.filter(pk=refusal.pk).update(payload=payload, errors=errors)


class Migration(migrations.Migration):
    dependencies = [("events", "0008_revoke_public_write_privileges")]

    operations = [migrations.RunPython(hide_tokens, migrations.RunPython.noop, elidable=True)]
