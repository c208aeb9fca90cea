"""A loopback HTTP server speaking the OpenAI and Anthropic wire formats, for the
integration tests, the demo and the bench (no network, no key).

Routes: ``/v1/chat/completions``, ``/v1/responses``, ``/v1/embeddings`` (point the
openai SDK at ``{url}/v1``) and ``/v1/messages`` (point the anthropic SDK at ``url``).
JSON answers, SSE streams (with the usage chunk/events each API sends), and, for a
model named ``fail-<status>``, that error status with the API's error body. A
model whose name contains ``slow`` pauses its stream after two content events
until the client goes away (for cancellation tests). Requests are kept in
``requests`` (path, headers, body) for assertions.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler
from typing import Any

try:
    from tests._loopback import LoopbackHTTPServer
except ImportError:  # run as a script from scripts/
    from _loopback import LoopbackHTTPServer  # type: ignore[no-redef]

REPLY = ["Hello", " from", " the", " loopback", " model."]
PROMPT_TOKENS = 12
COMPLETION_TOKENS = len(REPLY)
TOOL_ARGS = ['{"city": ', '"Paris"}']


class LLMServer(LoopbackHTTPServer):
    """Serves the fake APIs on 127.0.0.1 (a free port unless given)."""

    def __init__(self, port: int = 0) -> None:
        self.requests: list[dict[str, Any]] = []
        self.stopping = threading.Event()
        server = self

        class Handler(_Handler):
            owner = server

        super().__init__(Handler, host="127.0.0.1", port=port, name="llm-server")

    def stop(self) -> None:
        self.stopping.set()
        super().stop()


class _Handler(BaseHTTPRequestHandler):
    owner: LLMServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    # --- plumbing -----------------------------------------------------------------

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        self.owner.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
        model = str(body.get("model", ""))
        anthropic = self.path.startswith("/v1/messages")
        if model.startswith("fail-"):
            return self._error(int(model.split("-", 1)[1]), anthropic)
        route = {
            "/v1/chat/completions": self._chat,
            "/v1/responses": self._responses,
            "/v1/embeddings": self._embeddings,
            "/v1/messages": self._messages,
        }.get(self.path.split("?", 1)[0])
        if route is None:
            return self._json(404, {"error": {"message": f"no route {self.path}"}})
        route(body)

    def _json(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-request-id", "req_loopback")
        self.send_header("request-id", "req_loopback")
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, anthropic: bool) -> None:
        message = f"loopback error {status}"
        if anthropic:
            body = {"type": "error", "error": {"type": "invalid_request_error", "message": message}}
        else:
            body = {"error": {"message": message, "type": "invalid_request_error", "code": None}}
        self._json(status, body)

    def _sse_start(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

    def _event(self, data: Any, event: str | None = None) -> None:
        text = data if isinstance(data, str) else json.dumps(data)
        head = f"event: {event}\n" if event else ""
        self.wfile.write(f"{head}data: {text}\n\n".encode())
        self.wfile.flush()

    def _pause_if_slow(self, model: str, index: int) -> None:
        if "slow" in model and index == 2:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not self.owner.stopping.is_set():
                time.sleep(0.05)
                try:
                    self.wfile.write(b": keep-alive\n\n")  # fails once the client is gone
                    self.wfile.flush()
                except OSError:
                    return

    # --- OpenAI ---------------------------------------------------------------------

    def _chat(self, body: dict[str, Any]) -> None:
        model = body.get("model", "gpt-4o-mini")
        tools = bool(body.get("tools"))
        usage = {
            "prompt_tokens": PROMPT_TOKENS,
            "completion_tokens": COMPLETION_TOKENS,
            "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
            "prompt_tokens_details": {"cached_tokens": 2},
        }
        base = {"id": "chatcmpl-1", "created": 1700000000, "model": model}
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": "".join(REPLY)}
            if tools:
                message = {"role": "assistant", "content": None, "tool_calls": [_tool_call()]}
            self._json(200, {**base, "object": "chat.completion", "usage": usage, "choices": [
                {"index": 0, "message": message, "finish_reason": "tool_calls" if tools else "stop",
                 "logprobs": None}]})
            return
        self._sse_start()
        chunk = {**base, "object": "chat.completion.chunk"}
        self._event({**chunk, "choices": [
            {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]})
        if tools:
            first = _tool_call()
            first["index"] = 0
            first["function"]["arguments"] = ""
            self._event({**chunk, "choices": [{"index": 0, "delta": {"tool_calls": [first]}}]})
            for piece in TOOL_ARGS:
                self._event({**chunk, "choices": [{"index": 0, "delta": {"tool_calls": [
                    {"index": 0, "function": {"arguments": piece}}]}}]})
        else:
            for i, word in enumerate(REPLY):
                self._pause_if_slow(model, i)
                self._event({**chunk, "choices": [
                    {"index": 0, "delta": {"content": word}, "finish_reason": None}]})
        self._event({**chunk, "choices": [
            {"index": 0, "delta": {}, "finish_reason": "tool_calls" if tools else "stop"}]})
        if (body.get("stream_options") or {}).get("include_usage"):
            self._event({**chunk, "choices": [], "usage": usage})
        self._event("[DONE]")

    def _response(self, model: str, status: str, text: str, usage: bool) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": "resp_1", "object": "response", "created_at": 1700000000, "model": model,
            "status": status, "parallel_tool_calls": True, "tool_choice": "auto", "tools": [],
            "output": [] if not text else [{
                "type": "message", "id": "msg_1", "status": "completed", "role": "assistant",
                "content": [{"type": "output_text", "text": text, "annotations": []}]}],
        }
        if usage:
            out["usage"] = {
                "input_tokens": PROMPT_TOKENS, "output_tokens": COMPLETION_TOKENS,
                "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens_details": {"reasoning_tokens": 0},
            }
        return out

    def _responses(self, body: dict[str, Any]) -> None:
        model = body.get("model", "gpt-4o-mini")
        if not body.get("stream"):
            self._json(200, self._response(model, "completed", "".join(REPLY), True))
            return
        self._sse_start()
        seq = 0

        def send(kind: str, **fields: Any) -> None:
            nonlocal seq
            self._event({"type": kind, "sequence_number": seq, **fields}, event=kind)
            seq += 1

        text = "".join(REPLY)
        part = {"type": "output_text", "text": "", "annotations": []}
        item = {"type": "message", "id": "msg_1", "status": "in_progress", "role": "assistant",
                "content": []}
        where = {"item_id": "msg_1", "output_index": 0, "content_index": 0}
        send("response.created", response=self._response(model, "in_progress", "", False))
        send("response.output_item.added", output_index=0, item=item)
        send("response.content_part.added", part=part, **where)
        for i, word in enumerate(REPLY):
            self._pause_if_slow(model, i)
            send("response.output_text.delta", delta=word, logprobs=[], **where)
        send("response.output_text.done", text=text, logprobs=[], **where)
        send("response.content_part.done", part={**part, "text": text}, **where)
        send("response.output_item.done", output_index=0, item={
            **item, "status": "completed", "content": [{**part, "text": text}]})
        send("response.completed", response=self._response(model, "completed", text, True))

    def _embeddings(self, body: dict[str, Any]) -> None:
        inputs = body.get("input")
        items = inputs if isinstance(inputs, list) else [inputs]
        self._json(200, {
            "object": "list", "model": body.get("model", "text-embedding-3-small"),
            "data": [{"object": "embedding", "index": i, "embedding": [0.1, 0.2, 0.3]}
                     for i in range(len(items))],
            "usage": {"prompt_tokens": 4 * len(items), "total_tokens": 4 * len(items)},
        })

    # --- Anthropic ------------------------------------------------------------------

    def _messages(self, body: dict[str, Any]) -> None:
        model = body.get("model", "claude-3-5-haiku-latest")
        tools = bool(body.get("tools"))
        message = {"id": "msg_1", "type": "message", "role": "assistant", "model": model,
                   "stop_reason": None, "stop_sequence": None}
        if not body.get("stream"):
            content: list[dict[str, Any]] = [{"type": "text", "text": "".join(REPLY)}]
            if tools:
                content.append({"type": "tool_use", "id": "toolu_1", "name": "get_weather",
                                "input": {"city": "Paris"}})
            self._json(200, {**message, "stop_reason": "tool_use" if tools else "end_turn",
                             "content": content, "usage": {
                                 "input_tokens": PROMPT_TOKENS, "output_tokens": COMPLETION_TOKENS,
                                 "cache_read_input_tokens": 3, "cache_creation_input_tokens": 0}})
            return
        self._sse_start()

        def send(kind: str, **fields: Any) -> None:
            self._event({"type": kind, **fields}, event=kind)

        send("message_start", message={**message, "content": [], "usage": {
            "input_tokens": PROMPT_TOKENS, "output_tokens": 1,
            "cache_read_input_tokens": 3, "cache_creation_input_tokens": 0}})
        send("content_block_start", index=0, content_block={"type": "text", "text": ""})
        self._event({"type": "ping"}, event="ping")
        for i, word in enumerate(REPLY):
            self._pause_if_slow(model, i)
            send("content_block_delta", index=0, delta={"type": "text_delta", "text": word})
        send("content_block_stop", index=0)
        if tools:
            send("content_block_start", index=1, content_block={
                "type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}})
            for piece in TOOL_ARGS:
                send("content_block_delta", index=1,
                     delta={"type": "input_json_delta", "partial_json": piece})
            send("content_block_stop", index=1)
        send("message_delta", delta={"stop_reason": "tool_use" if tools else "end_turn",
                                     "stop_sequence": None},
             usage={"output_tokens": COMPLETION_TOKENS})
        send("message_stop")


def _tool_call() -> dict[str, Any]:
    return {"id": "call_1", "type": "function",
            "function": {"name": "get_weather", "arguments": "".join(TOOL_ARGS)}}


if __name__ == "__main__":
    with LLMServer(8765) as srv:
        print(f"LLM loopback server on {srv.url}")
        threading.Event().wait()
