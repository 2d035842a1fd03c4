"""A callback receiver: mailpush POSTs each event of an account (delivered, bounce, open, click, …) as
Tencent's callback JSON, signed with the account's CallbackSecret. This one checks the signature, refuses
replays and answers 200 only to what it accepted (anything else is retried by mailpush).

    CALLBACK_SECRET=… python3 examples/python/callback_receiver.py 127.0.0.1:9000
    # then: SetCallbackUrl with CallbackUrl = http://127.0.0.1:9000/mailpush (GetCallbackConfig shows the secret)

Each accepted event is printed as one JSON line; with EXIT_AFTER=N it exits after N events.
"""
import hashlib
import hmac
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

SECRET = os.environ["CALLBACK_SECRET"].encode()
EXIT_AFTER = int(os.environ.get("EXIT_AFTER", "0"))
seen = set()


def verified(headers, body: bytes) -> bool:
    ts = headers.get("X-Mailpush-Timestamp", "")
    if not ts.isdigit() or abs(time.time() - int(ts)) > 300:
        return False  # missing, or a replay of an old request
    mac = hmac.new(SECRET, ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest("v1=" + mac, headers.get("X-Mailpush-Signature", ""))


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if not verified(self.headers, body):
            self.send_response(401)
            self.end_headers()
            return
        self.send_response(200)
        self.end_headers()
        # Delivery is at least once: the event id tells a repeat.
        event_id = self.headers.get("X-Mailpush-Event-Id")
        if event_id in seen:
            return
        seen.add(event_id)
        print(json.dumps(json.loads(body)), flush=True)
        if EXIT_AFTER and len(seen) >= EXIT_AFTER:
            self.server.done = True

    def log_message(self, *args):
        pass


host, port = (sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:9000").rsplit(":", 1)
server = HTTPServer((host, int(port)), Receiver)
server.done = False
print(f"listening on http://{host}:{server.server_address[1]}/", file=sys.stderr, flush=True)
while not server.done:
    server.handle_request()
