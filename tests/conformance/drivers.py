"""One driver per ingress dialect, each using that dialect's official SDK.

Every driver offers the same operations so the conformance cells can be
written once; each returns plain Python values for the cell to assert on.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

import anthropic
import openai
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as gtypes

# A 1x1 PNG.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
PNG_B64 = base64.b64encode(PNG).decode()


def _raw(image: bool | bytes) -> bytes:
    """The image a driver sends: the bytes given, else the 1x1 PNG."""
    return image if isinstance(image, bytes) else PNG


def _b64(image: bool | bytes) -> str:
    return base64.b64encode(_raw(image)).decode()

WEATHER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"city": {"type": "string", "description": "City name"},
                   "unit": {"type": "string", "enum": ["c", "f"]}},
    "required": ["city"],
    "additionalProperties": False,
}


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]


@dataclass
class Result:
    text: str = ""
    thinking: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    stop: str | None = None
    usage: dict[str, Any] = field(default_factory=dict)
    raw: Any = None


@dataclass
class ApiFailure:
    status: int
    message: str
    retry_after: str | None


class Driver:
    name = ""
    #: the stop value this dialect reports when max tokens cut the reply
    max_tokens_stop = ""

    def __init__(self, base_url: str, key: str) -> None:
        self.base_url = base_url
        self.key = key

    def generate(self, model: str, prompt: str, *, stream: bool = False, tools: bool = False,
                 image: bool | bytes = False, reasoning: bool = False, max_tokens: int | None = None,
                 tool_result: tuple[ToolCall, str] | None = None) -> Result:
        raise NotImplementedError

    def failure(self, model: str) -> ApiFailure:
        """Send a plain request that the upstream will refuse; return what the SDK raised."""
        raise NotImplementedError


# ---------------------------------------------------------------------------- OpenAI chat


class OpenAIChatDriver(Driver):
    name = "openai-chat"
    max_tokens_stop = "length"

    def __init__(self, base_url: str, key: str) -> None:
        super().__init__(base_url, key)
        self.client = openai.OpenAI(base_url=f"{base_url}/v1", api_key=key, max_retries=0)

    def _messages(self, prompt: str, image: bool | bytes, tool_result: tuple[ToolCall, str] | None) -> list[Any]:
        content: Any = prompt
        if image:
            content = [{"type": "text", "text": prompt},
                       {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{_b64(image)}"}}]
        messages: list[Any] = [{"role": "system", "content": "You are terse."},
                               {"role": "user", "content": content}]
        if tool_result:
            call, output = tool_result
            messages.append({"role": "assistant", "content": None, "tool_calls": [
                {"id": call.id, "type": "function",
                 "function": {"name": call.name, "arguments": json.dumps(call.arguments)}}]})
            messages.append({"role": "tool", "tool_call_id": call.id, "content": output})
        return messages

    def generate(self, model: str, prompt: str, *, stream: bool = False, tools: bool = False,
                 image: bool | bytes = False, reasoning: bool = False, max_tokens: int | None = None,
                 tool_result: tuple[ToolCall, str] | None = None) -> Result:
        kwargs: dict[str, Any] = {"model": model, "messages": self._messages(prompt, image, tool_result)}
        if tools or tool_result:
            kwargs["tools"] = [{"type": "function", "function": {
                "name": "get_weather", "description": "Weather for a city", "parameters": WEATHER_SCHEMA}}]
        if reasoning:
            kwargs["reasoning_effort"] = "high"
        if max_tokens is not None:
            kwargs["max_tokens"] = max_tokens
        if not stream:
            completion = self.client.chat.completions.create(**kwargs)
            choice = completion.choices[0]
            extra = choice.message.model_extra or {}
            usage = completion.usage
            return Result(
                text=choice.message.content or "",
                thinking=extra.get("reasoning_content") or "",
                tool_calls=[ToolCall(c.id, c.function.name, json.loads(c.function.arguments or "{}"))
                            for c in choice.message.tool_calls or [] if c.type == "function"],
                stop=choice.finish_reason,
                usage=_openai_usage(usage),
                raw=completion,
            )
        result = Result()
        calls: dict[int, dict[str, str]] = {}
        for chunk in self.client.chat.completions.create(**kwargs, stream=True,
                                                         stream_options={"include_usage": True}):
            if chunk.usage is not None:
                result.usage = _openai_usage(chunk.usage)
            for choice in chunk.choices:
                delta = choice.delta
                result.text += delta.content or ""
                result.thinking += (delta.model_extra or {}).get("reasoning_content") or ""
                for tc in delta.tool_calls or []:
                    slot = calls.setdefault(tc.index, {"id": "", "name": "", "args": ""})
                    if tc.id:
                        slot["id"] = tc.id
                    if tc.function and tc.function.name:
                        slot["name"] = tc.function.name
                    if tc.function and tc.function.arguments:
                        slot["args"] += tc.function.arguments
                if choice.finish_reason:
                    result.stop = choice.finish_reason
        result.tool_calls = [ToolCall(s["id"], s["name"], json.loads(s["args"] or "{}"))
                             for _, s in sorted(calls.items())]
        return result

    def failure(self, model: str) -> ApiFailure:
        try:
            self.client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
        except openai.APIStatusError as exc:
            return ApiFailure(exc.status_code, exc.message, exc.response.headers.get("retry-after"))
        raise AssertionError("expected an error")


def _openai_usage(usage: Any) -> dict[str, Any]:
    if usage is None:
        return {}
    out = {"input": usage.prompt_tokens, "output": usage.completion_tokens}
    if usage.prompt_tokens_details is not None:
        out["cached"] = usage.prompt_tokens_details.cached_tokens
    if usage.completion_tokens_details is not None:
        out["reasoning"] = usage.completion_tokens_details.reasoning_tokens
    return out


# ---------------------------------------------------------------------------- OpenAI Responses


class ResponsesDriver(Driver):
    name = "openai-responses"
    max_tokens_stop = "max_output_tokens"

    def __init__(self, base_url: str, key: str) -> None:
        super().__init__(base_url, key)
        self.client = openai.OpenAI(base_url=f"{base_url}/v1", api_key=key, max_retries=0)

    def generate(self, model: str, prompt: str, *, stream: bool = False, tools: bool = False,
                 image: bool | bytes = False, reasoning: bool = False, max_tokens: int | None = None,
                 tool_result: tuple[ToolCall, str] | None = None) -> Result:
        content: list[Any] = [{"type": "input_text", "text": prompt}]
        if image:
            content.append({"type": "input_image", "image_url": f"data:image/png;base64,{_b64(image)}",
                            "detail": "auto"})
        items: list[Any] = [{"role": "developer", "content": "You are terse."},
                            {"role": "user", "content": content}]
        if tool_result:
            call, output = tool_result
            items.append({"type": "function_call", "call_id": call.id, "name": call.name,
                          "arguments": json.dumps(call.arguments)})
            items.append({"type": "function_call_output", "call_id": call.id, "output": output})
        kwargs: dict[str, Any] = {"model": model, "input": items}
        if tools or tool_result:
            kwargs["tools"] = [{"type": "function", "name": "get_weather", "description": "Weather for a city",
                                "parameters": WEATHER_SCHEMA, "strict": False}]
        if reasoning:
            kwargs["reasoning"] = {"effort": "high", "summary": "auto"}
        if max_tokens is not None:
            kwargs["max_output_tokens"] = max_tokens
        if stream:
            final = None
            text = ""
            args: dict[str, str] = {}
            thinking = ""
            for event in self.client.responses.create(**kwargs, stream=True):
                if event.type == "response.output_text.delta":
                    text += event.delta
                elif event.type == "response.reasoning_summary_text.delta":
                    thinking += event.delta
                elif event.type == "response.function_call_arguments.delta":
                    args[event.item_id] = args.get(event.item_id, "") + event.delta
                elif event.type in ("response.completed", "response.incomplete"):
                    final = event.response
            assert final is not None, "stream ended without response.completed"
            result = self._result(final)
            assert result.text == text, (result.text, text)
            if args:
                streamed = [json.loads(a) for a in args.values()]
                assert streamed == [c.arguments for c in result.tool_calls]
            result.thinking = thinking or result.thinking
            return result
        return self._result(self.client.responses.create(**kwargs))

    def _result(self, response: Any) -> Result:
        result = Result(raw=response)
        for item in response.output:
            if item.type == "message":
                result.text += "".join(c.text for c in item.content if c.type == "output_text")
            elif item.type == "function_call":
                result.tool_calls.append(ToolCall(item.call_id, item.name, json.loads(item.arguments or "{}")))
            elif item.type == "reasoning":
                result.thinking += "".join(s.text for s in item.summary)
        if response.status == "incomplete" and response.incomplete_details is not None:
            result.stop = response.incomplete_details.reason
        else:
            result.stop = response.status
        if response.usage is not None:
            u = response.usage
            result.usage = {"input": u.input_tokens, "output": u.output_tokens,
                            "cached": u.input_tokens_details.cached_tokens,
                            "reasoning": u.output_tokens_details.reasoning_tokens}
        return result

    def failure(self, model: str) -> ApiFailure:
        try:
            self.client.responses.create(model=model, input="hi")
        except openai.APIStatusError as exc:
            return ApiFailure(exc.status_code, exc.message, exc.response.headers.get("retry-after"))
        raise AssertionError("expected an error")


# ---------------------------------------------------------------------------- Anthropic


class AnthropicDriver(Driver):
    name = "anthropic"
    max_tokens_stop = "max_tokens"

    def __init__(self, base_url: str, key: str) -> None:
        super().__init__(base_url, key)
        self.client = anthropic.Anthropic(base_url=base_url, api_key=key, max_retries=0)

    def generate(self, model: str, prompt: str, *, stream: bool = False, tools: bool = False,
                 image: bool | bytes = False, reasoning: bool = False, max_tokens: int | None = None,
                 tool_result: tuple[ToolCall, str] | None = None) -> Result:
        content: list[Any] = [{"type": "text", "text": prompt}]
        if image:
            content.append({"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                        "data": _b64(image)}})
        messages: list[Any] = [{"role": "user", "content": content}]
        if tool_result:
            call, output = tool_result
            messages.append({"role": "assistant", "content": [
                {"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments}]})
            messages.append({"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": call.id, "content": output}]})
        kwargs: dict[str, Any] = {"model": model, "messages": messages, "system": "You are terse.",
                                  "max_tokens": max_tokens if max_tokens is not None else 4096}
        if tools or tool_result:
            kwargs["tools"] = [{"name": "get_weather", "description": "Weather for a city",
                                "input_schema": WEATHER_SCHEMA}]
        if reasoning:
            kwargs["thinking"] = {"type": "enabled", "budget_tokens": 2048}
        if stream:
            with self.client.messages.stream(**kwargs) as s:
                streamed_text = "".join(s.text_stream)
                message = s.get_final_message()
            result = self._result(message)
            assert result.text == streamed_text
            return result
        return self._result(self.client.messages.create(**kwargs))

    def _result(self, message: Any) -> Result:
        result = Result(raw=message, stop=message.stop_reason)
        for block in message.content:
            if block.type == "text":
                result.text += block.text
            elif block.type == "thinking":
                result.thinking += block.thinking
            elif block.type == "tool_use":
                result.tool_calls.append(ToolCall(block.id, block.name, dict(block.input)))
        u = message.usage
        result.usage = {"input": u.input_tokens, "output": u.output_tokens,
                        "cached": u.cache_read_input_tokens, "cache_write": u.cache_creation_input_tokens}
        return result

    def failure(self, model: str) -> ApiFailure:
        try:
            self.client.messages.create(model=model, max_tokens=64, messages=[{"role": "user", "content": "hi"}])
        except anthropic.APIStatusError as exc:
            return ApiFailure(exc.status_code, exc.message, exc.response.headers.get("retry-after"))
        raise AssertionError("expected an error")


# ---------------------------------------------------------------------------- Gemini


class GeminiDriver(Driver):
    name = "gemini"
    max_tokens_stop = "MAX_TOKENS"

    def __init__(self, base_url: str, key: str) -> None:
        super().__init__(base_url, key)
        self.client = genai.Client(api_key=key, http_options=gtypes.HttpOptions(
            base_url=base_url, api_version="v1beta",
            retry_options=gtypes.HttpRetryOptions(attempts=1)))

    def generate(self, model: str, prompt: str, *, stream: bool = False, tools: bool = False,
                 image: bool | bytes = False, reasoning: bool = False, max_tokens: int | None = None,
                 tool_result: tuple[ToolCall, str] | None = None) -> Result:
        parts: list[gtypes.Part] = [gtypes.Part(text=prompt)]
        if image:
            parts.append(gtypes.Part(inline_data=gtypes.Blob(mime_type="image/png", data=_raw(image))))
        contents = [gtypes.Content(role="user", parts=parts)]
        if tool_result:
            call, output = tool_result
            contents.append(gtypes.Content(role="model", parts=[gtypes.Part(
                function_call=gtypes.FunctionCall(id=call.id or None, name=call.name, args=call.arguments))]))
            contents.append(gtypes.Content(role="user", parts=[gtypes.Part(
                function_response=gtypes.FunctionResponse(id=call.id or None, name=call.name,
                                                          response={"result": output}))]))
        config = gtypes.GenerateContentConfig(system_instruction="You are terse.")
        if tools or tool_result:
            config.tools = [gtypes.Tool(function_declarations=[gtypes.FunctionDeclaration(
                name="get_weather", description="Weather for a city", parameters_json_schema=WEATHER_SCHEMA)])]
            config.automatic_function_calling = gtypes.AutomaticFunctionCallingConfig(disable=True)
        if reasoning:
            config.thinking_config = gtypes.ThinkingConfig(thinking_budget=2048, include_thoughts=True)
        if max_tokens is not None:
            config.max_output_tokens = max_tokens
        if not stream:
            return self._result([self.client.models.generate_content(model=model, contents=contents,
                                                                     config=config)])
        chunks = list(self.client.models.generate_content_stream(model=model, contents=contents, config=config))
        return self._result(chunks)

    def _result(self, responses: list[Any]) -> Result:
        result = Result(raw=responses)
        for response in responses:
            for candidate in response.candidates or []:
                for part in (candidate.content.parts if candidate.content else None) or []:
                    if part.function_call is not None:
                        fc = part.function_call
                        result.tool_calls.append(ToolCall(fc.id or "", fc.name or "", dict(fc.args or {})))
                    elif part.text is not None and part.thought:
                        result.thinking += part.text
                    elif part.text is not None:
                        result.text += part.text
                if candidate.finish_reason is not None:
                    result.stop = candidate.finish_reason.value
            if response.usage_metadata is not None:
                u = response.usage_metadata
                result.usage = {"input": u.prompt_token_count, "output": u.candidates_token_count,
                                "cached": u.cached_content_token_count, "reasoning": u.thoughts_token_count}
        return result

    def failure(self, model: str) -> ApiFailure:
        try:
            self.client.models.generate_content(model=model, contents="hi")
        except genai_errors.APIError as exc:
            headers = exc.response.headers if exc.response is not None else {}
            return ApiFailure(exc.code, exc.message or "", headers.get("retry-after"))
        raise AssertionError("expected an error")


DRIVERS: dict[str, type[Driver]] = {
    d.name: d for d in (OpenAIChatDriver, ResponsesDriver, AnthropicDriver, GeminiDriver)
}
