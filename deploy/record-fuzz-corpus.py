#!/opt/keyhold-test-venv/bin/python
"""Records the fuzzers' seed corpus (Tests/FuzzCorpus) from real clients on loopback.

- request-body, stream-usage, answer-usage: the official OpenAI and Anthropic SDKs (with the stand-in's own test keys)
  call Keyhold's stand-in provider (keyhold-fake-provider, which speaks both wire formats) through a recording relay: each request body and each
  answer, streamed or whole, is kept as the SDK sent it and as the stand-in answered.
- client-hello: the first bytes of TLS connections from Python's ssl (OpenSSL, what the SDKs use), curl and Node.
- request-head: a CONNECT from the OpenAI SDK and from curl given HTTPS_PROXY, and plain requests from curl and Node.
- dns-query: questions from glibc's stub resolver (getent) and from Node's c-ares (dns.resolve4), in a mount namespace
  whose /etc/resolv.conf names a recorder on 127.0.0.1:53.
- console-form: the console's forms as a browser encodes them.

Run from the repository's root as root, after `swift build` (deploy/test.sh's set-up installs the SDKs). Nothing
leaves 127.0.0.1. Inputs are named by the SHA-1 of their bytes, as libFuzzer names its own.
"""

import hashlib
import http.client
import http.server
import json
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import urllib.parse

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
CORPUS = os.path.join(ROOT, "Tests", "FuzzCorpus")


def keep(target, data):
    directory = os.path.join(CORPUS, target)
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, hashlib.sha1(data).hexdigest()), "wb") as file:
        file.write(data)


def start_fake_provider():
    binary = os.path.join(ROOT, ".build", "debug", "keyhold-fake-provider")
    process = subprocess.Popen([binary, "127.0.0.1", "0"], stdout=subprocess.PIPE, text=True)
    line = process.stdout.readline().split()
    if len(line) != 2 or line[0] != "listening":
        sys.exit(f"record-fuzz-corpus: the stand-in provider did not start ({line})")
    return process, int(line[1])


def recording_relay(upstream_port):
    """An HTTP server that keeps each request body and answer, and relays them to the stand-in provider."""

    class Relay(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            keep("request-body", body)
            connection = http.client.HTTPConnection("127.0.0.1", upstream_port)
            headers = {name: value for name, value in self.headers.items() if name.lower() not in ("host", "content-length")}
            connection.request("POST", self.path, body=body, headers=headers)
            answer = connection.getresponse()
            data = answer.read()
            streamed = answer.getheader("content-type", "").startswith("text/event-stream")
            keep("stream-usage" if streamed else "answer-usage", data)
            self.send_response(answer.status)
            for name, value in answer.getheaders():
                if name.lower() not in ("transfer-encoding", "content-length", "connection"):
                    self.send_header(name, value)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *arguments):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Relay)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def record_sdk_calls(relay_port):
    import anthropic
    import openai

    client = openai.OpenAI(api_key="sk-fake-openai-key", base_url=f"http://127.0.0.1:{relay_port}/v1", max_retries=0)
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Say hello"}], max_tokens=64)
    for chunk in client.chat.completions.create(
        model="gpt-5-mini",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Count to three"}],
        stream=True,
        stream_options={"include_usage": True},
        n=2,
    ):
        pass
    client.chat.completions.create(
        model="gpt-4.1-mini",
        messages=[{"role": "user", "content": [{"type": "text", "text": "What is here?"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}],
        tools=[{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}}],
    )
    client.responses.create(model="gpt-5-mini", input="Write one line", max_output_tokens=100)
    with client.responses.stream(model="gpt-5", input=[{"role": "user", "content": "Stream one line"}], instructions="Be brief.") as stream:
        for _ in stream:
            pass
    client.embeddings.create(model="text-embedding-3-small", input=["one", "two"])

    claude = anthropic.Anthropic(api_key="sk-ant-fake-anthropic-key", base_url=f"http://127.0.0.1:{relay_port}", max_retries=0)
    claude.messages.create(model="claude-haiku-4-5", max_tokens=128, messages=[{"role": "user", "content": "Say hello"}])
    with claude.messages.stream(
        model="claude-sonnet-4-5", max_tokens=256, system="Be brief.", messages=[{"role": "user", "content": "Stream a haiku"}]
    ) as stream:
        for _ in stream:
            pass


def first_bytes_listener(count):
    """A TCP listener on 127.0.0.1 that keeps the first bytes of `count` connections (up to a blank line or a whole
    TLS record) and closes each."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    kept = []

    def serve():
        for _ in range(count):
            connection, _ = listener.accept()
            data = b""
            connection.settimeout(5)
            try:
                while True:
                    part = connection.recv(65536)
                    if not part:
                        break
                    data += part
                    if data[:1] == b"\x16" and len(data) >= 5 and len(data) >= 5 + int.from_bytes(data[3:5], "big"):
                        break
                    if data[:1] != b"\x16" and b"\r\n\r\n" in data:
                        break
            except socket.timeout:
                pass
            connection.close()
            kept.append(data)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener.getsockname()[1], thread, kept


def record_client_hellos():
    port, thread, kept = first_bytes_listener(5)
    for name in ("api.openai.com", "api.anthropic.com"):
        try:
            ssl.create_default_context().wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname=name).close()
        except (ssl.SSLError, OSError):
            pass
    subprocess.run(
        ["curl", "-s", "-m", "5", "--resolve", f"api.openai.com:{port}:127.0.0.1", f"https://api.openai.com:{port}/v1/models"],
        check=False)
    subprocess.run(
        ["curl", "-s", "-m", "5", "--http1.1", "--resolve", f"api.anthropic.com:{port}:127.0.0.1", f"https://api.anthropic.com:{port}/"],
        check=False)
    node = "const tls = require('tls'); const s = tls.connect({host: '127.0.0.1', port: %d, servername: 'api.openai.com'}); s.on('error', () => {});" % port
    subprocess.run(["node", "-e", node], check=False, timeout=10)
    thread.join(20)
    for data in kept:
        keep("client-hello", data)


def record_request_heads():
    import openai

    port, thread, kept = first_bytes_listener(4)
    environment = dict(os.environ, HTTPS_PROXY=f"http://127.0.0.1:{port}", NO_PROXY="")
    script = "import openai\ntry:\n    openai.OpenAI(api_key='sk-x', max_retries=0, timeout=5).models.list()\nexcept Exception:\n    pass\n"
    subprocess.run([sys.executable, "-c", script], env=environment, check=False, timeout=30)
    subprocess.run(["curl", "-s", "-m", "5", "-p", "-x", f"http://127.0.0.1:{port}", "https://api.anthropic.com/v1/messages"], check=False)
    subprocess.run(["curl", "-s", "-m", "5", "-H", "Host: example.com", f"http://127.0.0.1:{port}/"], check=False)
    node = "fetch('http://127.0.0.1:%d/v1/models', {headers: {authorization: 'Bearer x'}}).catch(() => {});" % port
    subprocess.run(["node", "-e", node], check=False, timeout=10)
    thread.join(20)
    for data in kept:
        keep("request-head", data)
    del openai


def record_dns_queries():
    with tempfile.NamedTemporaryFile("w", suffix=".conf") as conf:
        conf.write("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
        conf.flush()
        # Namespaces of its own: its 127.0.0.1:53 is the recorder's, and its /etc/resolv.conf names it.
        output = subprocess.run(
            ["unshare", "--mount", "--net", "/usr/bin/python3", "-c", DNS_RECORDER, conf.name],
            stdout=subprocess.PIPE, check=True, timeout=60).stdout
    for line in output.splitlines():
        if line.startswith(b"dns "):
            keep("dns-query", bytes.fromhex(line[4:].decode()))


DNS_RECORDER = """
import socket, subprocess, sys, threading
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
subprocess.run(["mount", "--bind", sys.argv[1], "/etc/resolv.conf"], check=True)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 53))
queries = []
def answer():
    while True:
        data, peer = s.recvfrom(4096)
        queries.append(data)
        s.sendto(data[:2] + bytes([0x81, 0x83]) + data[4:], peer)  # NXDOMAIN
threading.Thread(target=answer, daemon=True).start()
subprocess.run(["getent", "ahosts", "api.openai.com"], stdout=subprocess.DEVNULL)
node = "const d = require('dns'); d.resolve4('api.anthropic.com', () => d.resolve6('api.openai.com', () => {}))"
subprocess.run(["node", "-e", node], timeout=20)
for data in queries:
    print("dns " + data.hex(), flush=True)
"""


def record_console_forms():
    for fields in (
        {"csrf": "3f9c2a7be1d04c5d9e8f7a6b5c4d3e2f", "key": "sk-corpus-not-a-key_-xyz"},
        {"csrf": "3f9c2a7be1d04c5d9e8f7a6b5c4d3e2f", "key": " sk-ant-corpus-not-a-key+/= with spaces\n", "provider": "anthropic"},
        {"signin": "kh_link_0123456789abcdef", "csrf": "00ff"},
        {"key": "clé-ünïcödé-🔑"},
    ):
        keep("console-form", urllib.parse.urlencode(fields).encode())


def main():
    if os.geteuid() != 0:
        sys.exit("record-fuzz-corpus: run as root (the DNS recorder binds port 53 in a namespace of its own)")
    provider, port = start_fake_provider()
    try:
        relay = recording_relay(port)
        record_sdk_calls(relay.server_address[1])
        relay.shutdown()
    finally:
        provider.terminate()
        provider.wait()
    record_client_hellos()
    record_request_heads()
    record_dns_queries()
    record_console_forms()
    for target in sorted(os.listdir(CORPUS)):
        print(f"{target}: {len(os.listdir(os.path.join(CORPUS, target)))} inputs")


if __name__ == "__main__":
    main()
