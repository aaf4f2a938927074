#!/usr/bin/env python3
"""The OpenAI Python SDK (the `openai` package pinned in tests/requirements.txt) against a
running tierwise router: each case makes the calls a user would make and prints what the SDK
gave back, one JSON object per line, for the Rust test that started the stack
(functions/router/tests/openai_sdk.rs) to assert on.

Usage:
    openai_sdk_check.py --base-url URL --key KEY --poor-key KEY [CASE ...]

URL is the router's OpenAI base URL (e.g. http://127.0.0.1:9000/lambda-url/router/v1), KEY a
tierwise API key with a budget, and the --poor-key one whose budget cannot cover a call. With
no CASE every case runs. Each line is {"case": NAME, ...what was observed...}; a case whose
call raised something other than what it observes has "unexpected": "<type>: <text>". The
exit status is 0 when every case ran (whatever it observed), 2 on a usage error and 3 when the
`openai` package cannot be imported. No retries (max_retries=0), so an error is the router's
first answer, and a 30 s timeout per call.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from typing import Any, Callable

try:
    import openai
    from openai import OpenAI
except ImportError as e:  # pragma: no cover - the message is the point
    print(
        f"cannot import the openai package ({e}): install it with "
        "`python3 -m pip install -r tests/requirements.txt`",
        file=sys.stderr,
    )
    sys.exit(3)

QUESTION = "What is the capital of France?"
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def usage_of(u: Any) -> dict[str, Any] | None:
    if u is None:
        return None
    return {
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.total_tokens,
    }


def error_of(e: openai.APIStatusError) -> dict[str, Any]:
    """What an SDK status error carries: its class, status, code, type and message."""
    return {
        "raised": type(e).__name__,
        "is_api_status_error": isinstance(e, openai.APIStatusError),
        "status_code": e.status_code,
        "code": e.code,
        "type": e.type,
        "message": e.message,
        "body": e.body,
    }


def raw_create(client: OpenAI, **kwargs: Any) -> tuple[Any, dict[str, str]]:
    """A chat completion and the router's x-tierwise-* headers."""
    raw = client.chat.completions.with_raw_response.create(**kwargs)
    headers = {k: v for k, v in raw.headers.items() if k.lower().startswith("x-tierwise-")}
    return raw.parse(), headers


def case_chat_auto(c: OpenAI, _poor: OpenAI) -> dict[str, Any]:
    r, headers = raw_create(c, model="auto", messages=[{"role": "user", "content": QUESTION}])
    choice = r.choices[0]
    return {
        "object": r.object,
        "model": r.model,
        "content": choice.message.content,
        "finish_reason": choice.finish_reason,
        "usage": usage_of(r.usage),
        "routed_model": headers.get("x-tierwise-model"),
        "tier": headers.get("x-tierwise-tier"),
    }


def case_stream(c: OpenAI, _poor: OpenAI) -> dict[str, Any]:
    stream = c.chat.completions.create(
        model="auto",
        messages=[{"role": "user", "content": QUESTION}],
        stream=True,
        stream_options={"include_usage": True},
    )
    pieces: list[str] = []
    finish_reasons: list[str] = []
    usages: list[dict[str, Any] | None] = []
    models: set[str] = set()
    chunks = 0
    last_choices = -1
    for chunk in stream:
        chunks += 1
        models.add(chunk.model)
        usages.append(usage_of(chunk.usage))
        last_choices = len(chunk.choices)
        for ch in chunk.choices:
            if ch.delta.content:
                pieces.append(ch.delta.content)
            if ch.finish_reason:
                finish_reasons.append(ch.finish_reason)
    return {
        "chunks": chunks,
        "text": "".join(pieces),
        "finish_reasons": finish_reasons,
        "models": sorted(models),
        "last_usage": usages[-1] if usages else None,
        "usage_chunks": sum(1 for u in usages if u is not None),
        "last_chunk_choices": last_choices,
    }


def case_tool_call(c: OpenAI, _poor: OpenAI) -> dict[str, Any]:
    r, headers = raw_create(
        c,
        model="auto",
        messages=[{"role": "user", "content": "What is the weather in Paris right now?"}],
        tools=[WEATHER_TOOL],
    )
    choice = r.choices[0]
    calls = choice.message.tool_calls or []
    return {
        "model": r.model,
        "finish_reason": choice.finish_reason,
        "content": choice.message.content,
        "tool_calls": [
            {
                "id": t.id,
                "type": t.type,
                "name": t.function.name,
                "arguments": json.loads(t.function.arguments),
            }
            for t in calls
        ],
        "routed_model": headers.get("x-tierwise-model"),
    }


def case_json_mode(c: OpenAI, _poor: OpenAI) -> dict[str, Any]:
    r, headers = raw_create(
        c,
        model="auto",
        messages=[{"role": "user", "content": f"{QUESTION} Answer as JSON."}],
        response_format={"type": "json_object"},
    )
    content = r.choices[0].message.content
    return {
        "model": r.model,
        "content": content,
        "parsed": json.loads(content) if content else None,
        "routed_model": headers.get("x-tierwise-model"),
    }


def expect_status_error(call: Callable[[], Any]) -> dict[str, Any]:
    try:
        r = call()
    except openai.APIStatusError as e:
        return error_of(e)
    return {"raised": None, "answer": r.model_dump()}


def case_context_too_long(c: OpenAI, _poor: OpenAI) -> dict[str, Any]:
    long_text = "lorem ipsum dolor sit amet " * 4000
    return expect_status_error(
        lambda: c.chat.completions.create(
            model="auto", messages=[{"role": "user", "content": long_text}]
        )
    )


def case_unknown_model(c: OpenAI, _poor: OpenAI) -> dict[str, Any]:
    return expect_status_error(
        lambda: c.chat.completions.create(
            model="no-such/model", messages=[{"role": "user", "content": QUESTION}]
        )
    )


def case_over_budget(_c: OpenAI, poor: OpenAI) -> dict[str, Any]:
    return expect_status_error(
        lambda: poor.chat.completions.create(
            model="auto", messages=[{"role": "user", "content": QUESTION}]
        )
    )


def case_bad_key(c: OpenAI, _poor: OpenAI) -> dict[str, Any]:
    wrong = c.with_options(api_key="tw-not-a-key")
    return expect_status_error(
        lambda: wrong.chat.completions.create(
            model="auto", messages=[{"role": "user", "content": QUESTION}]
        )
    )


def provider_refusal(model: str) -> Callable[[OpenAI, OpenAI], dict[str, Any]]:
    """A pool model named directly whose provider refuses every call in its own shape."""

    def case(c: OpenAI, _poor: OpenAI) -> dict[str, Any]:
        return expect_status_error(
            lambda: c.chat.completions.create(
                model=model, messages=[{"role": "user", "content": QUESTION}]
            )
        )

    return case


def case_models(c: OpenAI, _poor: OpenAI) -> dict[str, Any]:
    return {"ids": [m.id for m in c.models.list()]}


CASES: dict[str, Callable[[OpenAI, OpenAI], dict[str, Any]]] = {
    "models": case_models,
    "chat_auto": case_chat_auto,
    "stream": case_stream,
    "tool_call": case_tool_call,
    "json_mode": case_json_mode,
    "context_too_long": case_context_too_long,
    "unknown_model": case_unknown_model,
    "over_budget": case_over_budget,
    "bad_key": case_bad_key,
    "provider_numeric_code": provider_refusal("fake/refuses-numeric-code"),
    "provider_error_string": provider_refusal("fake/refuses-error-string"),
    "provider_plain_text": provider_refusal("fake/refuses-plain-text"),
}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--base-url", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--poor-key", required=True)
    p.add_argument("cases", nargs="*", metavar="CASE", help=", ".join(CASES))
    args = p.parse_args()
    unknown = [c for c in args.cases if c not in CASES]
    if unknown:
        p.error(f"unknown case(s) {', '.join(unknown)}; known: {', '.join(CASES)}")
    client = OpenAI(base_url=args.base_url, api_key=args.key, max_retries=0, timeout=30.0)
    poor = client.with_options(api_key=args.poor_key)
    for name in args.cases or list(CASES):
        try:
            seen = CASES[name](client, poor)
        except Exception as e:  # reported, for the test to fail with the details
            seen = {
                "unexpected": f"{type(e).__name__}: {e}",
                "traceback": traceback.format_exc(limit=4),
            }
        print(json.dumps({"case": name, **seen}, default=str), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
