"""Development stand-ins for notify's delivery gateways (compose only, never production).

HTTP on ``:8080``: ``POST /push`` and ``POST /sms`` answer 200 and log the JSON body (the push and
SMS webhooks of ``services/notify/channels.py``); ``GET /health`` answers 200. SMTP on ``:2525``
accepts every message and logs its envelope. Standard library only, so it runs in the aqsha image
(``python /opt/aqsha/dev_gateways.py``). Bodies are logged as received: OTP codes reach the SMS
sink in clear, which is the point of a development sink and why this never runs outside compose.
"""

from __future__ import annotations

import json
import logging
import os
import socketserver
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

log = logging.getLogger("dev-gateways")
HTTP_PORT = int(os.environ.get("GATEWAYS_HTTP_PORT", "8080"))
SMTP_PORT = int(os.environ.get("GATEWAYS_SMTP_PORT", "2525"))


class WebhookSink(BaseHTTPRequestHandler):
    """Accepts any JSON POST (push, SMS) with 200; ``GET /health`` for the health check."""

    def do_GET(self) -> None:
        self._answer(200 if self.path == "/health" else 404, {"status": "ok"})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace")
        log.info(
            "%s %s idempotency-key=%s %s", self.command, self.path, self.headers.get("Idempotency-Key"), body
        )
        self._answer(200, {"accepted": True})

    def _answer(self, status: int, payload: dict[str, object]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:  # silence the default access log
        return


class SmtpSink(socketserver.StreamRequestHandler):
    """Just enough SMTP for ``smtplib.SMTP.send_message``: every command succeeds, DATA is read."""

    def _reply(self, line: str) -> None:
        self.wfile.write(f"{line}\r\n".encode())

    def handle(self) -> None:
        self._reply("220 dev-gateways ESMTP")
        envelope: list[str] = []
        while raw := self.rfile.readline():
            command = raw.decode("utf-8", "replace").strip()
            verb = command.split(" ", 1)[0].upper()
            if verb == "DATA":
                self._reply("354 end with <CRLF>.<CRLF>")
                size = 0
                while (line := self.rfile.readline()) and line.rstrip(b"\r\n") != b".":
                    size += len(line)
                log.info("SMTP message %s (%d bytes)", " ".join(envelope), size)
                envelope.clear()
                self._reply("250 queued")
            elif verb == "QUIT":
                self._reply("221 bye")
                return
            else:
                if verb in ("MAIL", "RCPT"):
                    envelope.append(command)
                self._reply("250 ok")


def main() -> None:
    """Serve SMTP in a thread and HTTP in the foreground until killed."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    socketserver.ThreadingTCPServer.allow_reuse_address = True
    smtp = socketserver.ThreadingTCPServer(("0.0.0.0", SMTP_PORT), SmtpSink)
    threading.Thread(target=smtp.serve_forever, name="smtp", daemon=True).start()
    log.info("webhooks on :%d, SMTP on :%d", HTTP_PORT, SMTP_PORT)
    ThreadingHTTPServer(("0.0.0.0", HTTP_PORT), WebhookSink).serve_forever()


if __name__ == "__main__":
    main()
