# The load of keyhold-bench-boundary: one client, keep-alive, N sequential 1 KB requests, each timed; prints one
# "result MODE median_us p99_us n" line per mode. The same program runs inside a sandbox (through Keyhold's
# boundary) and on the host (direct), so the difference is the path. Standard library only.
import http.client, json, os, ssl, sys, time

mode, count = sys.argv[1], int(sys.argv[2])
body = json.dumps({"model": "gpt-4o-mini", "max_tokens": 8, "messages": [{"role": "user", "content": "x" * 950}]}).encode()
assert 1000 <= len(body) <= 1100


def connection():
    if mode == "secret":
        # A brokered secret's host by name: the gateway terminates TLS with the sandbox's authority (trusted through
        # SSL_CERT_FILE, as Debian's clients find it) and writes the secret into the header.
        context = ssl.create_default_context()
        host, port = os.environ["BENCH_PROVIDER_HOST"], int(os.environ["BENCH_PROVIDER_PORT"])
        return http.client.HTTPSConnection(host, port, context=context), os.environ["BENCH_SECRET"]
    if mode in ("direct", "sni", "connect"):
        context = ssl.create_default_context(cafile=os.environ["BENCH_CA_FILE"])
        host, port = os.environ["BENCH_PROVIDER_HOST"], int(os.environ["BENCH_PROVIDER_PORT"])
        if mode == "connect":
            # As clients that honour HTTPS_PROXY do: a CONNECT tunnel through the egress gateway.
            proxy = os.environ["HTTPS_PROXY"].split("//")[1]
            proxy_host, proxy_port = proxy.split(":")
            conn = http.client.HTTPSConnection(proxy_host, int(proxy_port), context=context)
            conn.set_tunnel(host, port)
            return conn, os.environ["BENCH_KEY"]
        return http.client.HTTPSConnection(host, port, context=context), os.environ["BENCH_KEY"]
    # managed: the metering proxy, in the sandbox (its injected base URL) or on the host's loopback; brokered: the
    # broker in the sandbox, with the placeholder its environment holds.
    base = os.environ["OPENAI_BASE_URL"].split("//")[1].split("/")[0]
    host, port = base.split(":")
    return http.client.HTTPConnection(host, int(port)), os.environ["OPENAI_API_KEY"]


if mode.startswith("handshake-"):
    # A new connection each time, timed until its TLS handshake is done: what a terminated host costs a client that
    # does not keep its connections, against the same handshake spliced to the provider.
    target = mode.split("-", 1)[1]
    mode = target
    samples = []
    for index in range(count // 10 + 20):
        conn, _ = connection()
        begin = time.perf_counter_ns()
        conn.connect()
        elapsed = time.perf_counter_ns() - begin
        conn.close()
        if index >= 20:
            samples.append(elapsed / 1000)
    samples.sort()
    print("result handshake-%s %.1f %.1f %d" % (target, samples[len(samples) // 2], samples[int(len(samples) * 0.99) - 1], len(samples)), flush=True)
    sys.exit(0)

conn, key = connection()
headers = {"content-type": "application/json", "authorization": "Bearer " + key}
samples = []
for index in range(count + 50):
    begin = time.perf_counter_ns()
    conn.request("POST", "/v1/chat/completions", body=body, headers=headers)
    response = conn.getresponse()
    response.read()
    elapsed = time.perf_counter_ns() - begin
    if response.status != 200:
        print("result %s error status=%d" % (mode, response.status), flush=True)
        sys.exit(1)
    if index >= 50:  # the first 50 warm the connection and the caches
        samples.append(elapsed / 1000)
samples.sort()
print("result %s %.1f %.1f %d" % (mode, samples[len(samples) // 2], samples[int(len(samples) * 0.99) - 1], len(samples)), flush=True)
