"""The agent's HTTP client against real local servers: TLS pinning, error mapping, retries."""

import socket
import threading
import time

import pytest

from agent.config import normalize_fingerprint
from agent.errors import AuthError, ServerError, TrustError, UnreachableError, UsageError
from agent.http import Client
from agent.throttle import Throttle

from .http_support import ScriptedServer, self_signed


def test_pinned_fingerprint_accepts_the_self_signed_server(tmp_path):
    cert, key, fingerprint = self_signed(tmp_path)
    with ScriptedServer([(200, {"ok": True})], tls=(cert, key)) as server:
        client = Client(server.url, "acag_x.y", fingerprint=fingerprint, retries=0)
        assert client.json("GET", "ping/") == {"ok": True}
        method, path, _body, headers = server.requests[0]
        assert (method, path) == ("GET", "/api/v1/agent/ping/")
        assert headers["Authorization"] == "Bearer acag_x.y"
        # Colons and upper case (as openssl prints it) are the same pin.
        spaced = ":".join(fingerprint[i : i + 2] for i in range(0, 64, 2)).upper()
        pinned = Client(server.url, fingerprint=normalize_fingerprint(spaced), retries=0)
        assert pinned.json("GET", "ping/") == {"ok": True}


def test_a_wrong_fingerprint_is_refused_clearly_and_nothing_is_sent(tmp_path):
    cert, key, fingerprint = self_signed(tmp_path)
    wrong = "ab" * 32
    with ScriptedServer([(200, {"ok": True})], tls=(cert, key)) as server:
        client = Client(server.url, "acag_x.y", fingerprint=wrong, retries=3)
        with pytest.raises(TrustError) as caught:
            client.json("POST", "heartbeat/", {"secret": "payload"})
        assert "does not match the pinned server_fingerprint" in str(caught.value)
        assert fingerprint in str(caught.value)  # says what the server presented
        assert caught.value.exit_code == 3
        assert server.requests == []  # the credential never left the agent


def test_without_a_pin_a_self_signed_certificate_fails_verification(tmp_path):
    cert, key, _ = self_signed(tmp_path)
    with ScriptedServer([(200, {"ok": True})], tls=(cert, key)) as server:
        client = Client(server.url, retries=0)
        with pytest.raises(TrustError, match="TLS with"):
            client.json("GET", "ping/")


def test_401_is_credential_rejected_with_the_servers_message():
    body = {"error": {"status": 401, "message": "This agent credential was revoked."}}
    with ScriptedServer([(401, body)]) as server:
        client = Client(server.url, "acag_x.y", retries=3)
        with pytest.raises(AuthError) as caught:
            client.json("POST", "heartbeat/")
        assert str(caught.value) == "credential rejected: This agent credential was revoked."
        assert caught.value.exit_code == 3
        assert len(server.requests) == 1  # never retried


def test_other_errors_carry_status_message_and_code():
    body = {"error": {"status": 400, "message": "bad", "details": {"code": "base_mismatch"}}}
    with ScriptedServer([(400, body)]) as server, pytest.raises(ServerError) as caught:
        Client(server.url, retries=0).json("POST", "x/")
    assert caught.value.status == 400
    assert caught.value.code == "base_mismatch"
    assert caught.value.server_message == "bad"


def test_503_and_502_are_retried_with_backoff_then_succeed():
    script = [(503, b"busy"), (502, b"gateway"), (200, {"done": 1})]
    with ScriptedServer(script) as server:
        client = Client(server.url, retries=3, backoff=0.01)
        assert client.json("POST", "x/", {"a": 1}) == {"done": 1}
        assert len(server.requests) == 3
        assert all(body == b'{"a":1}' for _, _, body, _ in server.requests)
        assert client.sent == 3 * len(b'{"a":1}')


def test_retries_give_up_and_report_the_last_status():
    with ScriptedServer([(503, {"error": {"status": 503, "message": "store down"}})]) as server:
        with pytest.raises(ServerError, match="store down"):
            Client(server.url, retries=2, backoff=0.01).json("GET", "x/")
        assert len(server.requests) == 3


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unreachable_server_is_a_clear_error_after_the_retries():
    url = f"http://127.0.0.1:{free_port()}"
    client = Client(url, retries=2, backoff=0.01)
    with pytest.raises(UnreachableError) as caught:
        client.json("GET", "x/")
    assert str(caught.value) == f"cannot reach server {url}: Connection refused (tried 3 times)"
    assert caught.value.exit_code == 4


def test_a_streamed_body_is_sent_with_its_length():
    with ScriptedServer([(200, {"ok": 1})]) as server:
        client = Client(server.url, retries=0)
        client.request("POST", "x/", body=lambda: iter([b"ab", b"cd"]), length=4)
        _method, _path, body, headers = server.requests[0]
    assert body == b"abcd" and headers["Content-Length"] == "4"
    assert "Transfer-Encoding" not in headers


def test_a_server_path_prefix_is_kept():
    with ScriptedServer([(200, {"ok": 1})]) as server:
        Client(server.url + "/portal/", retries=0).json("GET", "ping/")
        assert server.requests[0][1] == "/portal/api/v1/agent/ping/"


def test_a_bad_server_url_is_a_usage_error():
    with pytest.raises(UsageError):
        Client("ftp://example.com")


def test_a_throttled_body_is_sent_again_after_the_connection_broke():
    """The first connection dies mid-body; the retry's body must not wait for the first
    body's hold on the throttle (it is closed at once)."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    received = []

    def serve():
        first, _ = listener.accept()
        first.recv(100)
        first.close()  # broken mid-body
        second, _ = listener.accept()
        data = b""
        while b"\r\n\r\n" not in data:
            data += second.recv(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        headers = dict(line.split(b": ", 1) for line in head.split(b"\r\n")[1:])
        length = int(headers[b"Content-Length"])
        while len(body) < length:
            body += second.recv(65536)
        received.append(body)
        second.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n{}"
        )
        second.close()

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    throttle = Throttle(50_000_000.0)
    throttle.stop = threading.Event()  # a regression fails (Cancelled) instead of hanging
    threading.Timer(10, throttle.stop.set).start()
    payload = bytes(range(256)) * 4096  # 1 MiB
    client = Client(f"http://127.0.0.1:{port}", retries=2, backoff=0.01)
    started = time.monotonic()
    client.request(
        "POST", "x/", body=throttle.stream([payload[:10], payload[10:]]), length=len(payload)
    )
    assert time.monotonic() - started < 10
    server.join(timeout=10)
    listener.close()
    assert received == [payload]


def test_validation_errors_name_their_fields():
    body = {
        "error": {
            "status": 400,
            "message": "Invalid input.",
            "details": {"disk": ["No disk with this key on the machine."]},
        }
    }
    with ScriptedServer([(400, body)]) as server, pytest.raises(ServerError) as caught:
        Client(server.url, retries=0).json("POST", "upload-sessions/")
    assert caught.value.server_message == (
        "Invalid input. disk: No disk with this key on the machine."
    )


def test_a_kept_alive_connection_the_server_closed_is_not_reused():
    """The server answers one request and closes the idle connection (as gunicorn does
    after its keep-alive timeout): the next request goes over a new connection at once —
    no error, no retry (retries=0)."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n{}"
    connections = []

    def serve():
        for _ in range(2):
            conn, _ = listener.accept()
            connections.append(conn)
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            conn.sendall(answer)
            if len(connections) == 1:
                time.sleep(0.1)
                conn.close()  # idle keep-alive connection closed by the server
        connections[-1].close()

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    client = Client(f"http://127.0.0.1:{port}", retries=0)
    assert client.json("GET", "a/") == {}
    time.sleep(0.3)
    assert client.json("GET", "b/") == {}
    server.join(timeout=5)
    listener.close()
    assert len(connections) == 2


def test_a_connection_closed_while_the_request_was_sent_is_retried_at_once():
    """The race the idle check cannot see: the server closes the kept-alive connection just as
    the next request goes out (its keep-alive timeout). The request is sent again at once on
    a new connection: no backoff, no attempt used (retries=0 still succeeds)."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n{}"
    connections = []

    def read_request(conn):
        data = b""
        while b"\r\n\r\n" not in data:
            data += conn.recv(65536)

    def serve():
        first, _ = listener.accept()
        connections.append(first)
        read_request(first)
        first.sendall(answer)
        read_request(first)  # the second request arrives on the kept-alive connection...
        first.close()  # ...and the server closes it unanswered
        second, _ = listener.accept()
        connections.append(second)
        read_request(second)
        second.sendall(answer)
        second.close()

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    client = Client(f"http://127.0.0.1:{port}", retries=0, backoff=5)
    assert client.json("POST", "a/", {"n": 1}) == {}
    started = time.monotonic()
    assert client.json("POST", "b/", {"n": 2}) == {}
    assert time.monotonic() - started < 1  # a backoff would have slept 2.5-5 s
    server.join(timeout=5)
    listener.close()
    assert len(connections) == 2


def test_keep_alive_one_connection_serves_consecutive_requests():
    with ScriptedServer([(200, {"ok": 1})]) as server:
        client = Client(server.url, retries=0)
        for _ in range(3):
            client.json("POST", "x/", {"n": 1})
        assert len(client._idle) == 1  # the same connection, back in the pool each time
        client.close()
        assert client._idle == []
