#!/usr/bin/env python3
"""A local AWS Lambda Runtime API, to measure the cold start of a Lambda binary.

Usage:
    lambda_runtime_api.py --event FILE.json [--runs N] [--expect-status 200]
                          [--env KEY=VALUE ...] [--timeout S] [--responses OUT.jsonl]
                          [--log FILE] -- /path/to/bootstrap [args...]

Each run is a cold start: a fresh HTTP server on a free port of 127.0.0.1 serves the Runtime
API (2018-06-01) to a freshly spawned `bootstrap`, hands it the event of FILE.json as its one
invocation, and the run's time is the wall time from just before the spawn to the moment the
function's response POST arrives (headers received). The process is then killed: it would
otherwise wait forever on its next `invocation/next`, which is held open, unanswered, until the
kill -- as Lambda freezes an idle environment.

Endpoints served:
    GET  /2018-06-01/runtime/invocation/next            the event, once; later calls are held
    POST /2018-06-01/runtime/invocation/<id>/response   the function's result
    POST /2018-06-01/runtime/invocation/<id>/error      an invocation error
    POST /2018-06-01/runtime/init/error                 an initialisation error

The function gets the parent's environment plus AWS_LAMBDA_RUNTIME_API, AWS_LAMBDA_FUNCTION_NAME
(router), AWS_LAMBDA_FUNCTION_MEMORY_SIZE (256), AWS_LAMBDA_FUNCTION_VERSION ($LATEST),
AWS_LAMBDA_LOG_GROUP_NAME, AWS_LAMBDA_LOG_STREAM_NAME, AWS_LAMBDA_INITIALIZATION_TYPE
(on-demand), AWS_REGION (us-east-1, only if not already set), then the --env pairs, which
override everything. Its stdout and stderr go to this script's stderr (or to --log FILE), so
this script's stdout carries only the results: one line per run, then one JSON line
    {"runs": N, "min_ms": ..., "p50_ms": ..., "mean_ms": ..., "max_ms": ...}

A run fails -- message on stderr, exit status 1, no summary line -- when the function posts an
invocation or init error, exits or times out before responding, breaks the protocol, or (with
--expect-status) responds with another `statusCode` (API Gateway HTTP API v2 response shape).
Exit status 2 is a usage error. Python 3.11 standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, BinaryIO

API = "/2018-06-01/runtime"
NEXT_PATH = f"{API}/invocation/next"
INIT_ERROR_PATH = f"{API}/init/error"
INVOCATION_POST = re.compile(rf"^{API}/invocation/([^/]+)/(response|error)$")
ACCOUNT_ID = "123456789012"
FUNCTION_NAME = "router"
DEADLINE_MS = 30_000


class RunFailed(Exception):
    """A run that did not end in an acceptable response."""


class RunState:
    """What one run's server has seen; shared by the handler threads and the main thread."""

    def __init__(self, event: bytes, region: str) -> None:
        self.event = event
        self.region = region
        self.request_id = str(uuid.uuid4())
        self.lock = threading.Lock()
        self.next_calls = 0
        self.first_next_at: float | None = None
        # Set once the run has an outcome (a response, an error post, a protocol error).
        self.done = threading.Event()
        self.outcome: str | None = None  # "response", "error", "init_error", "protocol"
        self.outcome_at: float | None = None
        self.body: bytes = b""
        self.detail: str = ""
        # Set when the run is over: releases the held `next` calls.
        self.release = threading.Event()

    def finish(self, outcome: str, at: float, body: bytes = b"", detail: str = "") -> None:
        with self.lock:
            if self.outcome is None:
                self.outcome, self.outcome_at, self.body, self.detail = outcome, at, body, detail
        self.done.set()


def trace_id() -> str:
    return (
        f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)};"
        f"Parent={secrets.token_hex(8)};Sampled=0"
    )


def read_body(rfile: BinaryIO, headers: Any) -> bytes:
    """The request body, by Content-Length or chunked transfer encoding."""
    if "chunked" in headers.get("Transfer-Encoding", "").lower():
        chunks = []
        while True:
            size_line = rfile.readline(1024)
            if not size_line:
                break
            size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                # Trailers, up to the blank line.
                while rfile.readline(8192) not in (b"\r\n", b"\n", b""):
                    pass
                break
            chunks.append(rfile.read(size))
            rfile.readline(8)  # the CRLF after the chunk
        return b"".join(chunks)
    length = int(headers.get("Content-Length") or 0)
    return rfile.read(length) if length > 0 else b""


class RuntimeApiServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # The function is killed at the end of each run, mid-connection: not an error.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


def make_handler(state: RunState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the real Runtime API

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass  # stdout is for results only; errors are reported by the run itself

        def reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()

        def do_GET(self) -> None:  # noqa: N802
            if self.path != NEXT_PATH:
                self.reply(404, b'{"errorMessage":"unknown path","errorType":"NotFound"}')
                return
            now = time.perf_counter()
            with state.lock:
                state.next_calls += 1
                first = state.next_calls == 1
                if first:
                    state.first_next_at = now
            if not first:
                # The function is idle: hold the call (Lambda would freeze it) until the kill.
                state.release.wait()
                self.close_connection = True
                return
            deadline = int(time.time() * 1000) + DEADLINE_MS
            self.reply(
                200,
                state.event,
                {
                    "Lambda-Runtime-Aws-Request-Id": state.request_id,
                    "Lambda-Runtime-Deadline-Ms": str(deadline),
                    "Lambda-Runtime-Invoked-Function-Arn": (
                        f"arn:aws:lambda:{state.region}:{ACCOUNT_ID}:function:{FUNCTION_NAME}"
                    ),
                    "Lambda-Runtime-Trace-Id": trace_id(),
                },
            )

        def do_POST(self) -> None:  # noqa: N802
            arrived = time.perf_counter()
            body = read_body(self.rfile, self.headers)
            error_type = self.headers.get("Lambda-Runtime-Function-Error-Type", "")
            if self.path == INIT_ERROR_PATH:
                state.finish("init_error", arrived, body, error_type)
                self.reply(202, b'{"status":"OK"}')
                return
            match = INVOCATION_POST.match(self.path)
            if not match:
                self.reply(404, b'{"errorMessage":"unknown path","errorType":"NotFound"}')
                return
            request_id, kind = match.groups()
            if request_id != state.request_id:
                state.finish(
                    "protocol", arrived, body,
                    f"POST {kind} for request id {request_id!r}, issued {state.request_id!r}",
                )
                self.reply(400, b'{"errorMessage":"unknown request id","errorType":"InvalidRequestID"}')
                return
            state.finish("response" if kind == "response" else "error", arrived, body, error_type)
            self.reply(202, b'{"status":"OK"}')

    return Handler


def kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()


def run_once(
    args: argparse.Namespace, event: bytes, env: dict[str, str], log: BinaryIO | int
) -> tuple[float, float | None, bytes]:
    """One cold start: (ms to the response, ms to the first `next`, the response body)."""
    state = RunState(event, env["AWS_REGION"])
    server = RuntimeApiServer(("127.0.0.1", 0), make_handler(state))
    serve = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    serve.start()
    port = server.server_address[1]
    run_env = dict(env)
    run_env["AWS_LAMBDA_RUNTIME_API"] = f"127.0.0.1:{port}"
    run_env.update(args.env_pairs)
    proc: subprocess.Popen[bytes] | None = None
    try:
        started = time.perf_counter()
        try:
            proc = subprocess.Popen(
                args.command, env=run_env, stdin=subprocess.DEVNULL, stdout=log, stderr=log
            )
        except OSError as err:
            raise RunFailed(f"cannot start {args.command[0]}: {err}") from err
        deadline = started + args.timeout
        while not state.done.wait(0.01):
            if proc.poll() is not None:
                # It may have posted just before exiting: give the handler a moment.
                if state.done.wait(0.2):
                    break
                raise RunFailed(
                    f"the function exited with status {proc.returncode} before responding"
                    f" ({state.next_calls} invocation/next call(s))"
                )
            if time.perf_counter() > deadline:
                raise RunFailed(
                    f"no response within {args.timeout:g} s"
                    f" ({state.next_calls} invocation/next call(s))"
                )
        assert state.outcome_at is not None
        total_ms = (state.outcome_at - started) * 1000
        init_ms = None if state.first_next_at is None else (state.first_next_at - started) * 1000
        text = state.body.decode("utf-8", "replace")
        if state.outcome == "init_error":
            raise RunFailed(f"the function posted an init error ({state.detail}): {text}")
        if state.outcome == "error":
            raise RunFailed(f"the function posted an invocation error ({state.detail}): {text}")
        if state.outcome == "protocol":
            raise RunFailed(f"protocol error: {state.detail}")
        if args.expect_status is not None:
            try:
                status = json.loads(state.body).get("statusCode")
            except (ValueError, AttributeError):
                raise RunFailed(
                    f"expected a response with statusCode {args.expect_status}, got a body that"
                    f" is not a JSON object: {text[:500]!r}"
                ) from None
            if status != args.expect_status:
                raise RunFailed(
                    f"expected statusCode {args.expect_status}, got {status!r}: {text[:2000]}"
                )
        return total_ms, init_ms, state.body
    finally:
        if proc is not None:
            kill(proc)
        state.release.set()
        server.shutdown()
        server.server_close()


def parse_args(argv: list[str]) -> argparse.Namespace:
    if "--" not in argv:
        ours, command = argv, []
    else:
        cut = argv.index("--")
        ours, command = argv[:cut], argv[cut + 1 :]
    parser = argparse.ArgumentParser(
        prog="lambda_runtime_api.py",
        description="Measure a Lambda binary's cold start against a local Runtime API.",
        usage="%(prog)s --event FILE.json [--runs N] [--expect-status CODE] [options] -- BOOTSTRAP [ARGS...]",
    )
    parser.add_argument("--event", required=True, help="the invocation event (a JSON file)")
    parser.add_argument("--runs", type=int, default=1, help="cold starts to measure (default 1)")
    parser.add_argument(
        "--expect-status", type=int, default=None,
        help="fail unless the response's statusCode (API Gateway v2 shape) is this",
    )
    parser.add_argument(
        "--env", action="append", default=[], metavar="KEY=VALUE",
        help="an extra environment variable for the function (repeatable; overrides the rest)",
    )
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="seconds to wait for each response (default 60)"
    )
    parser.add_argument("--responses", help="write each run's response as a JSON line to this file")
    parser.add_argument("--log", help="append the function's stdout/stderr to this file (default: stderr)")
    args = parser.parse_args(ours)
    if not command:
        parser.error("the function to run is missing: put it after `--`")
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    pairs = []
    for item in args.env:
        key, sep, value = item.partition("=")
        if not sep or not key:
            parser.error(f"--env {item!r} is not KEY=VALUE")
        pairs.append((key, value))
    args.env_pairs = pairs
    args.command = command
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    try:
        with open(args.event, "rb") as f:
            event = f.read()
        json.loads(event)
    except (OSError, ValueError) as err:
        print(f"lambda_runtime_api.py: cannot use --event {args.event}: {err}", file=sys.stderr)
        return 2

    env = dict(os.environ)
    env.setdefault("AWS_REGION", "us-east-1")
    env.update(
        {
            "AWS_LAMBDA_FUNCTION_NAME": FUNCTION_NAME,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{FUNCTION_NAME}",
            "AWS_LAMBDA_LOG_STREAM_NAME": (
                time.strftime("%Y/%m/%d", time.gmtime()) + f"/[$LATEST]{secrets.token_hex(16)}"
            ),
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        }
    )

    log: BinaryIO | int = open(args.log, "ab") if args.log else sys.stderr.fileno()
    responses = open(args.responses, "w", encoding="utf-8") if args.responses else None
    times: list[float] = []
    try:
        for run in range(1, args.runs + 1):
            try:
                total_ms, init_ms, body = run_once(args, event, env, log)
            except RunFailed as err:
                print(f"lambda_runtime_api.py: run {run}/{args.runs} FAILED: {err}", file=sys.stderr)
                return 1
            times.append(total_ms)
            text = body.decode("utf-8", "replace")
            try:
                parsed: Any = json.loads(body)
            except ValueError:
                parsed = text
            status = parsed.get("statusCode") if isinstance(parsed, dict) else None
            init = "n/a" if init_ms is None else f"{init_ms:.2f} ms"
            print(
                f"run {run}/{args.runs}: {total_ms:.2f} ms to response"
                f" (first invocation/next at {init}), statusCode {status}",
                flush=True,
            )
            if responses is not None:
                responses.write(json.dumps({"run": run, "ms": round(total_ms, 3), "response": parsed}) + "\n")
                responses.flush()
    finally:
        if responses is not None:
            responses.close()
        if not isinstance(log, int):
            log.close()

    summary = {
        "runs": len(times),
        "min_ms": round(min(times), 3),
        "p50_ms": round(statistics.median(times), 3),
        "mean_ms": round(statistics.fmean(times), 3),
        "max_ms": round(max(times), 3),
    }
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
