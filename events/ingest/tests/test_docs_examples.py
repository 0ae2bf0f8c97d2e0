"""The Events API page's Python `requests` and Node `axios` examples, run as printed against a live server.

The code below is copied from the page; only its URL and the token placeholder are replaced.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from events.models import Event

pytestmark = pytest.mark.live

DOC_URL = "https://events.canvasapp.com/v1/event"
DOC_TOKEN = "[your_api_token]"

PYTHON_EXAMPLE = r"""import requests

url = "https://events.canvasapp.com/v1/event"

payload="{\"version\": 1,\"type\": \"event\",\"event\": \"Purchased an Item\",\"properties\" : {\"revenue\": \"39.95\",\"shippingMethod\" : \"2-day\"},\"timestamp\" : \"2012-12-02T00:30:08.276Z\"}"
headers = {
  'Content-Type': 'application/json',
  'X-Auth-Token': '[your_api_token]'
}

response = requests.request("POST", url, headers=headers, data=payload)

print(response.text)
"""  # noqa: E501

NODE_EXAMPLE = r"""var axios = require('axios');
var data = JSON.stringify({
  version: 1,
  type: 'event',
  event: 'Purchased an Item',
  properties: { revenue: '39.95', shippingMethod: '2-day' },
  timestamp: '2012-12-02T00:30:08.276Z',
});

var config = {
  method: 'post',
  url: 'https://events.canvasapp.com/v1/event',
  headers: {
    'Content-Type': 'application/json',
    'X-Auth-Token': '[your_api_token]',
  },
  data: data,
};

axios(config)
  .then(function (response) {
    console.log(JSON.stringify(response.data));
  })
  .catch(function (error) {
    console.log(error);
  });
"""

EXAMPLES = [
    pytest.param([sys.executable, "-c"], PYTHON_EXAMPLE, id="python-requests"),
    pytest.param(["node", "-e"], NODE_EXAMPLE, id="node-axios"),
]


def run_example(command: list[str], code: str, *, url: str, token: str) -> str:
    assert code.count(DOC_URL) == 1 and code.count(DOC_TOKEN) == 1
    code = code.replace(DOC_URL, url).replace(DOC_TOKEN, token)
    # Node finds axios in the project's node_modules (package.json); loopback must not go through a proxy.
    environment = {**os.environ, "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
    finished = subprocess.run(
        [*command, code], cwd=settings.BASE_DIR, env=environment, capture_output=True, text=True, timeout=30
    )
    assert finished.returncode == 0, finished.stderr
    return finished.stdout


@pytest.fixture(scope="module", autouse=True)
def _axios_installed():
    if not (Path(settings.BASE_DIR) / "node_modules" / "axios").is_dir():
        subprocess.run(["npm", "install", "--no-audit", "--no-fund"], cwd=settings.BASE_DIR, check=True, timeout=300)


@pytest.mark.parametrize(("command", "code"), EXAMPLES)
def test_the_docs_example_stores_the_event(live_server, transactional_db, acme, acme_token, command, code):
    token, plaintext = acme_token

    printed = run_example(command, code, url=f"{live_server.url}/v1/event", token=plaintext)

    event = Event.objects.get()
    assert json.loads(printed) == {"id": event.id, "duplicate": False}
    assert printed.strip() == f'{{"id":{event.id},"duplicate":false}}'
    assert (event.team_id, event.token_id, event.event) == (acme.id, token.id, "Purchased an Item")
    assert event.properties == {"revenue": "39.95", "shippingMethod": "2-day"}
    assert event.timestamp.isoformat() == "2012-12-02T00:30:08.276000+00:00"
