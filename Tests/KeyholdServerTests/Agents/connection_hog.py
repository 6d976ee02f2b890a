"""A hostile managed agent: it opens more connections to the metering proxy than a sandbox may hold, asks on each,
reports how many were served, frees 100 and takes 100 new ones, then holds what it has."""
import os
import socket
import time

TOKEN = os.environ["OPENAI_API_KEY"]
REQUEST = ("GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n\r\n" % TOKEN).encode()


def served(sock):
    """Whether the proxy answers a request on this connection (a refused one was closed: EOF or reset)."""
    try:
        sock.sendall(REQUEST)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                return False
            data += chunk
        return data.startswith(b"HTTP/1.1 200")
    except OSError:
        return False


held = [socket.create_connection(("127.0.0.1", 8787)) for _ in range(600)]
answered = [sock for sock in held if served(sock)]
print("budget served=%d refused=%d" % (len(answered), len(held) - len(answered)), flush=True)
for sock in held:
    if sock not in answered:
        sock.close()
for sock in answered[:100]:
    sock.close()
# The proxy learns of the closes as they arrive: each new connection is retried (bounded) until there is room.
reopened = 0
for _ in range(100):
    for _attempt in range(200):
        sock = socket.create_connection(("127.0.0.1", 8787))
        if served(sock):
            answered.append(sock)
            reopened += 1
            break
        sock.close()
        time.sleep(0.05)
print("budget reopened=%d" % reopened, flush=True)
print("budget holding", flush=True)
while True:
    time.sleep(3600)
