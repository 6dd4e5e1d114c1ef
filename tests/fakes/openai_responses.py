"""Fake OpenAI Responses API: POST /v1/responses (and GET /v1/models). Bodies are validated against
the `openai` SDK's ResponseCreateParams; streams follow the real event sequence with
sequence_number, reasoning items with summary deltas and encrypted_content on request."""

from __future__ import annotations

import base64
import functools
import time
from collections.abc import Iterator
from typing import Any

import orjson
from aiohttp import web
from openai.types.responses import response_create_params
from pydantic import TypeAdapter

from .common import (
    JSON,
    STOP_CONTENT_FILTER,
    STOP_MAX_TOKENS,
    BodyInvalid,
    ConversationView,
    FakeError,
    Reply,
    ToolOffer,
    body_size,
    data_url_bytes,
    fake_signature,
    json_body,
    json_response,
    plan_reply,
    split_string,
    split_text,
    stream_frames,
    typed_dict_keys,
    validate_typed,
)
from .openai_chat import OpenAIFake

# Fields real clients send that the SDK types do not list (Codex sends client_metadata).
CLIENT_FIELDS = frozenset({"client_metadata"})
CREATE_KEYS = typed_dict_keys(response_create_params.ResponseCreateParamsStreaming) | CLIENT_FIELDS
INCOMPLETE_REASONS = {STOP_MAX_TOKENS: "max_output_tokens", STOP_CONTENT_FILTER: "content_filter"}


@functools.cache
def _adapter() -> TypeAdapter[Any]:
    return TypeAdapter(response_create_params.ResponseCreateParams)


class FakeOpenAIResponses(OpenAIFake):
    kind = "openai-responses"
    create_keys = CREATE_KEYS

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post(f"{self.base_path}/responses", self._responses)
        app.router.add_get(f"{self.base_path}/models", self._models)

    async def _responses(self, request: web.Request) -> web.StreamResponse:
        rejected = self._check_access(request)
        if rejected is not None:
            return rejected
        body = json_body(request)
        try:
            self._validate(body)
        except BodyInvalid as invalid:
            return self.error_response(FakeError(400, invalid.message, "invalid_request_error"), invalid.param)
        scenario, scripted_error = await self.scripted()
        if scripted_error is not None:
            return scripted_error
        reply = plan_reply(conversation_view(body, body_size(request)), scenario, self.kind)
        response = self._response(body, reply)
        if body.get("stream"):
            return await stream_frames(request, stream_events(response), scenario, headers=self._headers())
        return json_response(response, headers=self._headers())

    def _validate(self, body: Any) -> None:
        if not isinstance(body, dict):
            raise BodyInvalid("We could not parse the JSON body of your request.")
        unknown = sorted(set(body) - self.allowed_keys)
        if unknown:
            raise BodyInvalid(f"Unknown parameter: '{unknown[0]}'.", unknown[0])
        validate_typed(_adapter(), _without_null_reasoning_content(_with_default_strict(body)), self.allowed_keys)
        if not body.get("previous_response_id"):
            check_tool_outputs(body.get("input"))
        images_in(body)

    def _response(self, body: JSON, reply: Reply) -> JSON:
        output: list[JSON] = []
        if reply.thinking is not None:
            output.append(self._reasoning_item(body, reply.thinking))
        if reply.text or not reply.tool_calls:
            output.append(self._message_item(reply.text))
        for name, arguments in reply.tool_calls:
            output.append(
                {
                    "type": "function_call",
                    "id": self.ids.next("fc_"),
                    "call_id": self.ids.next("call_"),
                    "name": name,
                    "arguments": orjson.dumps(arguments).decode(),
                    "status": "completed",
                }
            )
        incomplete = INCOMPLETE_REASONS.get(reply.stop)
        return {
            "id": self.ids.next("resp_"),
            "object": "response",
            "created_at": int(time.time()),
            "status": "incomplete" if incomplete else "completed",
            "error": None,
            "incomplete_details": {"reason": incomplete} if incomplete else None,
            "instructions": body.get("instructions"),
            "max_output_tokens": body.get("max_output_tokens"),
            "model": body.get("model", "gpt-5.1"),
            "output": output,
            "parallel_tool_calls": body.get("parallel_tool_calls", True),
            "previous_response_id": body.get("previous_response_id"),
            "reasoning": body.get("reasoning") or {"effort": None, "summary": None},
            "store": body.get("store", True),
            "temperature": body.get("temperature", 1.0),
            "text": body.get("text") or {"format": {"type": "text"}},
            "tool_choice": body.get("tool_choice", "auto"),
            "tools": body.get("tools") or [],
            "top_p": body.get("top_p", 1.0),
            "truncation": body.get("truncation", "disabled"),
            "usage": usage_body(reply),
            "user": body.get("user"),
            "metadata": body.get("metadata") or {},
        }

    def _reasoning_item(self, body: JSON, thinking: str) -> JSON:
        reasoning = body.get("reasoning") or {}
        wants_summary = bool(reasoning.get("summary") or reasoning.get("generate_summary"))
        item: JSON = {
            "type": "reasoning",
            "id": self.ids.next("rs_"),
            "summary": [{"type": "summary_text", "text": thinking}] if wants_summary else [],
        }
        if "reasoning.encrypted_content" in (body.get("include") or []):
            item["encrypted_content"] = base64.b64encode(
                b"fake-encrypted:" + fake_signature(thinking).encode()
            ).decode()
        return item

    def _message_item(self, text: str) -> JSON:
        return {
            "type": "message",
            "id": self.ids.next("msg_"),
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}],
        }



def usage_body(reply: Reply) -> JSON:
    usage = reply.usage
    return {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {"cached_tokens": usage.cached_tokens, "cache_write_tokens": 0},
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.input_tokens + usage.output_tokens,
    }


def _with_default_strict(body: JSON) -> JSON:
    """The SDK types mark a function tool's `strict` as required, but the API accepts it omitted
    (clients and translators routinely leave it out), so fill it in before validating."""
    tools = body.get("tools")
    if not isinstance(tools, list):
        return body
    filled = [
        {**tool, "strict": None} if isinstance(tool, dict) and tool.get("type") == "function" and "strict" not in tool
        else tool
        for tool in tools
    ]
    return {**body, "tools": filled}


def _without_null_reasoning_content(body: JSON) -> JSON:
    """Codex sends reasoning items back with ``"content": null``; the SDK's
    ``ResponseReasoningItemParam`` does not allow it but the real API accepts it
    (Codex talks to it every day), so validate as if the null were absent."""
    items = body.get("input")
    if not isinstance(items, list) or not any(_null_reasoning_content(item) for item in items):
        return body
    return {**body, "input": [{k: v for k, v in item.items() if k != "content"}
                              if _null_reasoning_content(item) else item for item in items]}


def _null_reasoning_content(item: Any) -> bool:
    return (isinstance(item, dict) and item.get("type") == "reasoning" and "content" in item
            and item["content"] is None)


# ---------------------------------------------------------------------------
# Semantic rules: without previous_response_id, calls and outputs must pair up in `input`.


def check_tool_outputs(items: Any) -> None:
    if not isinstance(items, list):
        return
    calls = [item["call_id"] for item in items if item.get("type") == "function_call"]
    outputs = [item["call_id"] for item in items if item.get("type") == "function_call_output"]
    for call_id in outputs:
        if call_id not in calls:
            raise BodyInvalid(f"No tool call found for function call output with call_id {call_id}.", "input")
    for call_id in calls:
        if call_id not in outputs:
            raise BodyInvalid(f"No tool output found for function call {call_id}.", "input")


# ---------------------------------------------------------------------------
# Request -> neutral view


def conversation_view(body: JSON, body_size: int) -> ConversationView:
    view = ConversationView(body_size=body_size, max_tokens=body.get("max_output_tokens"))
    reasoning = body.get("reasoning")
    view.thinking_enabled = isinstance(reasoning, dict) and reasoning.get("effort") != "none"
    view.tools = [
        ToolOffer(tool["name"], tool.get("parameters") or {})
        for tool in body.get("tools") or []
        if tool.get("type") == "function"
    ]
    view.json_schema = _json_schema((body.get("text") or {}).get("format"))
    view.cache_requested = bool(body.get("prompt_cache_key"))
    items = body.get("input")
    if isinstance(items, str):
        view.last_user_text = items
        return view
    items = items or []
    trailing = _trailing_outputs(items)
    if trailing:
        view.tool_result_text = "\n".join(trailing)
    last_user = next((i for i in reversed(items) if i.get("role") == "user"), None)
    if last_user is not None:
        _read_user_message(last_user, view)
    return view


def _json_schema(text_format: Any) -> JSON | None:
    if not isinstance(text_format, dict):
        return None
    if text_format.get("type") == "json_schema":
        schema = text_format.get("schema")
        return schema if isinstance(schema, dict) else {}
    if text_format.get("type") == "json_object":
        return {}
    return None


def _trailing_outputs(items: list[JSON]) -> list[str]:
    outputs: list[str] = []
    for item in reversed(items):
        if item.get("type") != "function_call_output":
            break
        outputs.insert(0, _output_text(item.get("output")))
    return outputs


def _output_text(output: Any) -> str:
    if isinstance(output, str):
        return output
    if isinstance(output, list):
        return "\n".join(part.get("text", "") for part in output if part.get("type") == "input_text")
    return ""


def _read_user_message(message: JSON, view: ConversationView) -> None:
    content = message.get("content")
    if isinstance(content, str):
        view.last_user_text = content
        return
    texts: list[str] = []
    for part in content or []:
        if part.get("type") == "input_text":
            texts.append(part["text"])
        elif part.get("type") == "input_image":
            url = part.get("image_url") or ""
            view.image_mime_types.append(url[5:].split(";", 1)[0] if url.startswith("data:") else "url")
    view.last_user_text = "\n".join(texts)


# ---------------------------------------------------------------------------
# Stream rendering


class _Sequencer:
    def __init__(self) -> None:
        self.number = 0

    def frame(self, event: JSON) -> bytes:
        event["sequence_number"] = self.number
        self.number += 1
        return f"event: {event['type']}\n".encode() + b"data: " + orjson.dumps(event) + b"\n\n"


def stream_events(response: JSON) -> Iterator[bytes]:
    seq = _Sequencer()
    in_progress = {**response, "status": "in_progress", "output": [], "usage": None, "incomplete_details": None}
    yield seq.frame({"type": "response.created", "response": in_progress})
    yield seq.frame({"type": "response.in_progress", "response": in_progress})
    for index, item in enumerate(response["output"]):
        yield from _item_events(seq, index, item)
    final_type = "response.completed" if response["status"] == "completed" else "response.incomplete"
    yield seq.frame({"type": final_type, "response": response})


def _item_events(seq: _Sequencer, index: int, item: JSON) -> Iterator[bytes]:
    kind = item["type"]
    common = {"item_id": item["id"], "output_index": index}
    if kind == "reasoning":
        yield seq.frame({"type": "response.output_item.added", "output_index": index,
                         "item": {**item, "summary": [], "encrypted_content": None}})
        for summary_index, summary in enumerate(item["summary"]):
            part = {"type": "summary_text", "text": ""}
            yield seq.frame({"type": "response.reasoning_summary_part.added", **common,
                             "summary_index": summary_index, "part": part})
            for piece in split_text(summary["text"]):
                yield seq.frame({"type": "response.reasoning_summary_text.delta", **common,
                                 "summary_index": summary_index, "delta": piece})
            yield seq.frame({"type": "response.reasoning_summary_text.done", **common,
                             "summary_index": summary_index, "text": summary["text"]})
            yield seq.frame({"type": "response.reasoning_summary_part.done", **common,
                             "summary_index": summary_index, "part": summary})
    elif kind == "message":
        yield seq.frame({"type": "response.output_item.added", "output_index": index,
                         "item": {**item, "status": "in_progress", "content": []}})
        part = item["content"][0]
        content = {**common, "content_index": 0}
        yield seq.frame({"type": "response.content_part.added", **content,
                         "part": {**part, "text": ""}})
        for piece in split_text(part["text"]):
            yield seq.frame({"type": "response.output_text.delta", **content, "delta": piece, "logprobs": []})
        yield seq.frame({"type": "response.output_text.done", **content, "text": part["text"], "logprobs": []})
        yield seq.frame({"type": "response.content_part.done", **content, "part": part})
    else:
        yield seq.frame({"type": "response.output_item.added", "output_index": index,
                         "item": {**item, "arguments": "", "status": "in_progress"}})
        for piece in split_string(item["arguments"]):
            yield seq.frame({"type": "response.function_call_arguments.delta", **common, "delta": piece})
        yield seq.frame({"type": "response.function_call_arguments.done", **common,
                         "name": item["name"], "arguments": item["arguments"]})
    yield seq.frame({"type": "response.output_item.done", "output_index": index, "item": item})


__all__ = ["FakeOpenAIResponses"]


def images_in(body: JSON) -> list[bytes]:
    """The inline images and files of a request, decoded as the API does (BodyInvalid if it cannot)."""
    found: list[bytes] = []
    items = body.get("input")
    for number, item in enumerate(items if isinstance(items, list) else ()):
        content = item.get("content") if isinstance(item, dict) else None
        for index, part in enumerate(content if isinstance(content, list) else ()):
            where = f"input[{number}].content[{index}]"
            if part.get("type") == "input_image":
                data = data_url_bytes(part.get("image_url"), f"{where}.image_url")
            elif part.get("type") == "input_file":
                data = data_url_bytes(part.get("file_data"), f"{where}.file_data")
            else:
                data = None
            if data is not None:
                found.append(data)
    return found
