#!/usr/bin/env python3
"""A real SMTP server (aiosmtpd) for the API tests, with a small HTTP API to read what it got
and to make it misbehave. Both listen on 127.0.0.1.

    smtp_server.py [--port N] [--auth USER:PASS]

--port 0 (the default) picks a free port; a given port lets a test point memberd at it before
anything listens there. --auth requires AUTH PLAIN or LOGIN with these credentials (over plain
TCP) before MAIL. Once both servers listen, it prints one JSON line,
{"smtp_port": N, "control_port": M}, and runs until it is killed or its stdin closes, so that
it dies with the test that started it.

Control API:
    GET  /health             200
    GET  /messages           the messages received, oldest first
    POST /reset              forgets them
    POST /stall  {"on": b}   while on, DATA waits before answering; a client that goes away
                             meanwhile leaves nothing behind
    GET  /stalled            {"waiting": n}: how many DATA commands the stall holds now
    POST /reject {"code": c} while 451 or 550, DATA is answered with that code; null accepts again
"""

import argparse
import asyncio
import email
import json
import logging
import os
import socket
import sys
import threading
import time
import warnings
from email import policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

REJECTIONS = {
    451: "451 4.3.0 try again later",
    550: "550 5.1.1 mailbox unavailable",
}

# Messages of a few MB fit; aiosmtpd answers 552 above this.
DATA_SIZE_LIMIT = 32 * 1024 * 1024

# How often a stalled DATA looks whether it may go on.
STALL_POLL = 0.02


class State:
    """What the SMTP side and the control API share; the lock is never held across an await."""

    def __init__(self):
        self.lock = threading.Lock()
        self.messages = []
        self.stall = False
        self.reject = None
        self.waiting = 0

    def snapshot(self):
        with self.lock:
            return list(self.messages)


def parse(raw):
    """The headers and bodies a test looks at; a message the parser chokes on keeps its raw
    data and says why in parse_error."""
    out = {"subject": None, "from": None, "to": None, "message_id": None, "text": None, "html": None}
    try:
        message = email.message_from_bytes(raw, policy=policy.default)
        for key, name in (("subject", "subject"), ("from", "from"), ("to", "to"), ("message_id", "message-id")):
            value = message.get(name)
            out[key] = None if value is None else str(value)
        for key, subtype in (("text", "plain"), ("html", "html")):
            part = message.get_body(preferencelist=(subtype,))
            if part is not None:
                out[key] = part.get_content().replace("\r\n", "\n")
    except Exception as error:  # a test wants to see the message anyway
        out["parse_error"] = f"{type(error).__name__}: {error}"
    return out


class Handler:
    def __init__(self, state):
        self.state = state

    async def handle_DATA(self, server, session, envelope):
        with self.state.lock:
            stalled = self.state.stall
            if stalled:
                self.state.waiting += 1
        if stalled:
            try:
                while True:
                    with self.state.lock:
                        if not self.state.stall:
                            break
                    # When the client goes away, aiosmtpd cancels the task running this
                    # handler (eof_received / connection_lost), so the sleep raises
                    # CancelledError and nothing is stored.
                    await asyncio.sleep(STALL_POLL)
            finally:
                with self.state.lock:
                    self.state.waiting -= 1
            # A client killed just before the stall ended: let the loop see its FIN or RST
            # (which cancels this task) before deciding that it is still there.
            await asyncio.sleep(0.05)
            if server.transport is None or server.transport.is_closing():
                return "421 4.4.2 connection lost"
        with self.state.lock:
            code = self.state.reject
        if code is not None:
            return REJECTIONS.get(code, f"{code} rejected by the test")

        raw = envelope.original_content or b""
        auth_user = None
        if session.authenticated and isinstance(session.auth_data, LoginPassword):
            auth_user = session.auth_data.login.decode("utf-8", "replace")
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "data": raw.decode("utf-8", "replace"),
            **parse(raw),
            "received_at": time.time(),
            "auth_user": auth_user,
        }
        with self.state.lock:
            self.state.messages.append(record)
        return "250 2.0.0 OK: queued"


def authenticator_for(user, password):
    user, password = user.encode(), password.encode()

    def authenticate(server, session, envelope, mechanism, auth_data):
        if (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == user
            and auth_data.password == password
        ):
            return AuthResult(success=True, auth_data=auth_data)
        return AuthResult(success=False, handled=False)

    return authenticate


def control_handler(state):
    class Control(BaseHTTPRequestHandler):
        def log_message(self, format, *args):
            pass

        def reply(self, status, body=None):
            data = json.dumps(body if body is not None else {}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def body(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                return json.loads(raw or b"{}")
            except ValueError:
                return None

        def do_GET(self):
            if self.path == "/health":
                self.reply(200, {"ok": True})
            elif self.path == "/stalled":
                with state.lock:
                    waiting = state.waiting
                self.reply(200, {"waiting": waiting})
            elif self.path == "/messages":
                self.reply(200, state.snapshot())
            else:
                self.reply(404, {"error": f"no GET {self.path}"})

        def do_POST(self):
            body = self.body()
            if self.path == "/reset":
                with state.lock:
                    state.messages.clear()
                self.reply(200)
            elif self.path == "/stall" and isinstance(body, dict) and isinstance(body.get("on"), bool):
                with state.lock:
                    state.stall = body["on"]
                self.reply(200)
            elif self.path == "/reject" and isinstance(body, dict) and "code" in body:
                code = body["code"]
                if code is not None and not (isinstance(code, int) and 400 <= code < 600):
                    self.reply(400, {"error": "code is a 4xx or 5xx status, or null"})
                    return
                with state.lock:
                    state.reject = code
                self.reply(200)
            elif self.path in ("/reset", "/stall", "/reject"):
                self.reply(400, {"error": f"bad body for POST {self.path}"})
            else:
                self.reply(404, {"error": f"no POST {self.path}"})

    return Control


def exit_when_stdin_closes():
    while sys.stdin.buffer.read1(65536):
        pass
    os._exit(0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="SMTP port (0: a free one)")
    parser.add_argument("--auth", metavar="USER:PASS", help="require AUTH with these credentials")
    args = parser.parse_args()
    credentials = None
    if args.auth is not None:
        user, sep, password = args.auth.partition(":")
        if not sep or not user:
            parser.error("--auth is USER:PASS")
        credentials = (user, password)

    # aiosmtpd warns, per connection, that AUTH without TLS is unsafe (here it is the point),
    # and on every AUTH that Session.login_data, which it sets itself, is deprecated.
    warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
    noise = ("auth_require_tls == False", "Session.login_data is deprecated")
    logging.getLogger("mail.log").addFilter(
        lambda record: not any(n in record.getMessage() for n in noise)
    )

    state = State()
    handler = Handler(state)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)

    def smtp():
        options = {}
        if credentials is not None:
            options = {
                "auth_required": True,
                "auth_require_tls": False,
                "authenticator": authenticator_for(*credentials),
            }
        # A fixed hostname: the default, socket.getfqdn(), can wait on DNS for every connection.
        return SMTP(
            handler,
            hostname="localhost",
            data_size_limit=DATA_SIZE_LIMIT,
            enable_SMTPUTF8=True,
            loop=loop,
            **options,
        )

    # Bound here rather than through aiosmtpd's Controller, which cannot take port 0.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    sock.setblocking(False)
    loop.run_until_complete(loop.create_server(smtp, sock=sock, backlog=128))
    smtp_port = sock.getsockname()[1]

    control = ThreadingHTTPServer(("127.0.0.1", 0), control_handler(state))
    control.daemon_threads = True
    threading.Thread(target=control.serve_forever, daemon=True).start()
    threading.Thread(target=exit_when_stdin_closes, daemon=True).start()

    print(json.dumps({"smtp_port": smtp_port, "control_port": control.server_address[1]}), flush=True)
    loop.run_forever()


if __name__ == "__main__":
    main()
