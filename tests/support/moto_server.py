#!/usr/bin/env python3
"""Run a moto server (moto[server]==5.2.1) on 127.0.0.1 for the Rust integration tests.

Started by `tests/src/moto.rs`, never by hand in CI. Protocol with the parent:

* stdout carries exactly one line, `READY http://127.0.0.1:<port>`, once the server
  accepts connections (the port is chosen by the OS, so parallel runs never clash);
  everything else (moto's and werkzeug's logging) goes to stderr;
* the script then blocks reading stdin; when stdin reaches EOF -- the parent closed it,
  or the parent died, even by SIGKILL, which closes its end of the pipe -- it exits at
  once, closing the server's port. A test binary therefore never leaves a server running.

Exit status 2 with a message on stderr when moto is not installed.
"""

import logging
import os
import sys
import threading


def exit_at_stdin_eof() -> None:
    """Blocks until EOF on stdin (any data is ignored), then ends the process at once.

    No graceful `server.stop()`: it would wait out werkzeug's 0.5 s poll and any request in
    flight, and moto keeps nothing worth saving. The kernel closes the port with the process.
    """
    try:
        while sys.stdin.buffer.read(4096):
            pass
    finally:
        os._exit(0)


def main() -> int:
    # Watch stdin from the start, so that a parent that dies during the slow `import moto`
    # does not leave this process behind either.
    watcher = threading.Thread(target=exit_at_stdin_eof, daemon=True)
    watcher.start()
    ready_out = sys.stdout
    # Anything moto or werkzeug might print must not reach the READY channel.
    sys.stdout = sys.stderr
    try:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
        from werkzeug.serving import make_server
    except ImportError as err:
        print(
            f"moto_server.py: cannot import moto.server ({err}); install it with "
            "`python3 -m pip install -r tests/requirements.txt` (moto[server]==5.2.1)",
            file=sys.stderr,
        )
        return 2

    # One log line per request would only be noise in test output; errors still show.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    # moto's threaded server, as `moto.server.ThreadedMotoServer` builds it, except that
    # DynamoDB requests run one at a time. DynamoDB applies a write's condition and the write
    # atomically; moto's backend does not lock, so two concurrent conditional updates could
    # both pass their condition (a budget test saw 8 reservations granted where 6 fit).
    # Other services (SQS long polls among them) stay concurrent.
    app = DomainDispatcherApplication(create_backend_app)
    dynamodb = threading.Lock()

    def serialized(environ, start_response):
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            with dynamodb:
                return list(app(environ, start_response))
        return app(environ, start_response)

    server = make_server("127.0.0.1", 0, serialized, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host, port = server.server_address[:2]
    ready_out.write(f"READY http://{host}:{port}\n")
    ready_out.flush()
    try:
        watcher.join()  # returns only if the watcher failed to end the process
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    code = main()
    sys.stderr.flush()
    os._exit(code)
