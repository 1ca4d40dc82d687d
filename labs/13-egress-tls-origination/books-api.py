#!/usr/bin/env python3
"""A local stand-in for the Google Books API at www.googleapis.com, HTTPS only.

Lab 13 runs it where there is no internet: it answers details v2's one call,
GET /books/v1/volumes?q=isbn:0486424618, with the fields details v2 reads (the
real API's answer, trimmed), and anything else with 404. It logs every TLS
connection with the server name the client asked for (SNI), and every request,
so the lab can show that the sidecar, not the app, spoke TLS.

    python3 books-api.py PORT CERT KEY
"""

import json
import ssl
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ISBN = "0486424618"

# The Dover Thrift edition of The Comedy of Errors, as the real API describes it.
VOLUMES = {
    "kind": "books#volumes",
    "totalItems": 1,
    "items": [
        {
            "kind": "books#volume",
            "volumeInfo": {
                "title": "The Comedy of Errors",
                "authors": ["William Shakespeare"],
                "publisher": "Dover Publications",
                "publishedDate": "2002-03-12",
                "industryIdentifiers": [
                    {"type": "ISBN_10", "identifier": "0486424618"},
                    {"type": "ISBN_13", "identifier": "9780486424613"},
                ],
                "pageCount": 80,
                "printType": "BOOK",
                "language": "en",
            },
        }
    ],
}


def log(line):
    print(line, flush=True)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "books-api-stand-in"

    def do_GET(self):
        if self.path == f"/books/v1/volumes?q=isbn:{ISBN}":
            status, body = 200, json.dumps(VOLUMES).encode()
        else:
            status, body = 404, b'{"error": {"code": 404, "message": "Not Found"}}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        tls = self.connection.version() if isinstance(self.connection, ssl.SSLSocket) else "plain"
        log(f"{tls} {self.client_address[0]} {fmt % args}")


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A client that does not speak TLS (or does not trust us) ends here: one line.
        log(f"refused {client_address[0]}: {sys.exc_info()[1]}")


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: books-api.py PORT CERT KEY")
    port, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)

    def sni(conn, name, _ctx):
        log(f"TLS handshake, server name {name}")

    context.sni_callback = sni
    server = Server(("127.0.0.1", port), Handler)
    # Handshake in the handler's thread, so a bad client cannot stall the accept loop.
    server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    log(f"books API stand-in on https://127.0.0.1:{port}")
    server.serve_forever()


if __name__ == "__main__":
    main()
