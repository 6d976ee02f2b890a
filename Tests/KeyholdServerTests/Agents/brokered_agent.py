# A BYOK agent with brokered keys, for the sandbox-boundary tests: the official SDKs, unmodified, constructed with
# no argument (the environment holds placeholders and base URLs pointing at the broker inside the sandbox), then a
# hostile agent's moves with its placeholder. Prints one "check NAME RESULT" line per step, then "done".
import json
import os
import urllib.error
import urllib.request

from openai import OpenAI

import sdk_calls
from sdk_calls import report


def openai_models():
    return "ok:%d" % len(list(OpenAI().models.list()))


def call(path, method="GET", headers=None, body=None):
    request = urllib.request.Request(os.environ["OPENAI_BASE_URL"] + path, method=method, headers=headers or {}, data=body)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode()


placeholder = os.environ["OPENAI_API_KEY"]
bearer = {"Authorization": "Bearer " + placeholder}


def echo_plain():
    # An upstream that repeats the credentials it got: the agent must read its placeholder back, never the key.
    status, headers, text = call("/echo/headers", headers=bearer)
    echoed = json.loads(text)["authorization"]
    return "%d:%s:%s" % (status, echoed == "Bearer " + placeholder, headers.get("x-echo-authorization") == "Bearer " + placeholder)


def echo_stream():
    status, _, text = call("/echo/stream", method="POST", headers=dict(bearer, **{"content-type": "application/json"}), body=b"{}")
    return "%d:%d" % (status, text.count("Bearer " + placeholder))


def placeholder_in_body_and_url():
    # Substitution happens only in the provider's header: a placeholder in a body or a URL stays a placeholder.
    body = json.dumps({"model": "gpt-4o-mini", "max_tokens": 8, "messages": [{"role": "user", "content": placeholder}]}).encode()
    status, _, _ = call("/chat/completions?key=" + placeholder, method="POST", headers=dict(bearer, **{"content-type": "application/json"}), body=body)
    return str(status)


def wrong_header():
    # The OpenAI placeholder in a header that is not OpenAI's (x-api-key) is refused like a made-up key.
    status, _, text = call("/models", headers={"x-api-key": placeholder})
    return "%d:%s" % (status, json.loads(text)["error"]["message"])


def made_up():
    status, _, text = call("/models", headers={"Authorization": "Bearer sk-keyhold-" + "A" * 43})
    return "%d:%s" % (status, json.loads(text)["error"]["message"])


sdk_calls.run_all()
sdk_calls.run_responses()
for name, fn in [
    ("openai_models", openai_models), ("echo_plain", echo_plain), ("echo_stream", echo_stream),
    ("placeholder_in_body_and_url", placeholder_in_body_and_url), ("wrong_header", wrong_header), ("made_up", made_up),
]:
    report(name, fn)
print("done python", flush=True)
