# A BYOK agent for the sandbox-boundary tests: the official SDKs, unmodified, with nothing but the environment
# Keyhold injected (and the test CA it must trust, as a real agent trusts the public ones), then the probes a hostile
# tenant would try. Prints one "check NAME RESULT" line per probe, then "done".
import json, os, socket, ssl, sys, time

import anthropic
from openai import OpenAI

CERT = os.environ["TEST_CA_FILE"]
HOST_SERVICE = int(os.environ["TEST_HOST_SERVICE_PORT"])
NEIGHBOUR = int(os.environ["TEST_NEIGHBOUR_PORT"])
PRIVATE_ADDRESS = os.environ["TEST_PRIVATE_ADDRESS"]
PHASE2 = os.environ["TEST_PHASE2_FILE"]


def report(name, fn):
    try:
        result = fn()
    except Exception as error:  # the probe's failure is its result
        result = "error:%s:%s" % (type(error).__name__, str(error).replace("\n", " ")[:160])
    print("check %s %s" % (name, result), flush=True)


def tls_context():
    return ssl.create_default_context(cafile=CERT)


def openai_plain():
    reply = OpenAI().chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    return "ok:%d" % reply.usage.total_tokens


def openai_stream():
    chunks = OpenAI().chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True)
    return "ok:%d" % sum(1 for _ in chunks)


def openai_responses():
    reply = OpenAI().responses.create(model="gpt-5-mini", input="hi")
    return "ok:%s:%d" % (reply.status, reply.usage.total_tokens)


def openai_responses_stream():
    types = [event.type for event in OpenAI().responses.create(model="gpt-5-mini", input="hi", stream=True)]
    return "ok:%s" % types[-1]


def anthropic_via_proxy():
    # The SDK's HTTP client honours HTTPS_PROXY: a CONNECT to the gateway, TLS end to end to the provider.
    client = anthropic.Anthropic(http_client=anthropic.DefaultHttpxClient(verify=tls_context()))
    message = client.messages.create(model="claude-haiku-4-5", max_tokens=16, messages=[{"role": "user", "content": "hi"}])
    return "ok:%d" % message.usage.output_tokens


def anthropic_stream_by_name():
    # Without the proxy: the name resolves (its /etc/hosts) to the gateway, which routes on the TLS server name.
    client = anthropic.Anthropic(http_client=anthropic.DefaultHttpxClient(verify=tls_context(), trust_env=False))
    with client.messages.stream(model="claude-haiku-4-5", max_tokens=16, messages=[{"role": "user", "content": "hi"}]) as stream:
        text = "".join(stream.text_stream)
    return "ok:%d" % len(text)


def connect(host, port):
    with socket.create_connection((host, port), timeout=3):
        return "connected"


def through_proxy(target):
    with socket.create_connection(("127.0.0.1", 3128), timeout=5) as conn:
        conn.sendall(("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (target, target)).encode())
        return conn.recv(200).decode(errors="replace").split("\r\n")[0].replace(" ", "_")


def plain_http(name, port):
    # The name resolves to the gateway, but its entries allow HTTPS only: plain HTTP is refused.
    with socket.create_connection((name, port), timeout=5) as conn:
        conn.sendall(("GET / HTTP/1.1\r\nHost: %s:%d\r\n\r\n" % (name, port)).encode())
        return conn.recv(200).decode(errors="replace").split("\r\n")[0].replace(" ", "_")


def fronting(target, server_name):
    # A tunnel to an allowed host whose TLS names another: the gateway closes it before any byte reaches the host.
    conn = socket.create_connection(("127.0.0.1", 3128), timeout=5)
    conn.sendall(("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (target, target)).encode())
    if not conn.recv(200).startswith(b"HTTP/1.1 200"):
        return "no-tunnel"
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with context.wrap_socket(conn, server_hostname=server_name):
        return "handshake"


def tls_by_name(name):
    with socket.create_connection((name, 443), timeout=5) as raw:
        with tls_context().wrap_socket(raw, server_hostname=name):
            return "handshake"


def listing(path):
    try:
        return ",".join(sorted(os.listdir(path))) or "empty"
    except OSError as error:
        return "error:%s" % error.strerror.replace(" ", "_")


report("openai_plain", openai_plain)
report("openai_stream", openai_stream)
report("openai_responses", openai_responses)
report("openai_responses_stream", openai_responses_stream)
report("anthropic_via_proxy", anthropic_via_proxy)
report("anthropic_stream_by_name", anthropic_stream_by_name)
report("host_loopback_service", lambda: connect("127.0.0.1", HOST_SERVICE))
report("neighbour_sandbox", lambda: connect("127.0.0.1", NEIGHBOUR))
report("metadata_direct", lambda: connect("169.254.169.254", 80))
report("private_direct", lambda: connect(PRIVATE_ADDRESS, 443))
report("metadata_proxy", lambda: through_proxy("169.254.169.254:80"))
report("rebinding_proxy", lambda: through_proxy("rebind.test:443"))
report("fronting", lambda: fronting("fake-provider.test:443", "other.example.com"))
report("rebinding_name", lambda: tls_by_name("rebind.test"))
report("unlisted_proxy", lambda: through_proxy("unlisted.example.com:443"))
report("plain_http_to_https_entry", lambda: plain_http("fake-provider.test", 443))
report("unlisted_name", lambda: socket.getaddrinfo("unlisted.example.com", 443)[0][4][0])
report("wildcard_name", lambda: socket.getaddrinfo("api.wild.test", 443, socket.AF_INET)[0][4][0])
report("run_transient", lambda: listing("/run/systemd/transient"))
report("agent_states", lambda: listing("/var/lib/keyhold-agents"))
print("done phase1", flush=True)

# Phase 2: the admin removed the provider's entry; the running gateway refuses it from the next connection on.
while not os.path.exists(PHASE2):
    time.sleep(0.05)
report("after_deny_proxy", lambda: through_proxy("fake-provider.test:443"))
print("done phase2", flush=True)
time.sleep(3600)
