"""Send one request through each ingress dialect of a running router (SDK clients)."""

from __future__ import annotations

import anthropic
import openai
from google import genai
from google.genai import types as genai_types

from tests.harness import CLIENT_KEY, RouterProcess


def via_anthropic(router: RouterProcess, model: str, text: str, stream: bool = False) -> str:
    client = anthropic.Anthropic(base_url=router.base_url, api_key=CLIENT_KEY, max_retries=0)
    if stream:
        with client.messages.stream(model=model, max_tokens=256,
                                    messages=[{"role": "user", "content": text}]) as events:
            return events.get_final_text()
    reply = client.messages.create(model=model, max_tokens=256, system="Be brief.",
                                   messages=[{"role": "user", "content": text}])
    return "".join(block.text for block in reply.content if block.type == "text")


def via_chat(router: RouterProcess, model: str, text: str, stream: bool = False) -> str:
    client = openai.OpenAI(base_url=f"{router.base_url}/v1", api_key=CLIENT_KEY, max_retries=0)
    messages: list[dict[str, str]] = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}]
    if stream:
        chunks = client.chat.completions.create(model=model, messages=messages, stream=True)  # type: ignore[arg-type]
        return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    reply = client.chat.completions.create(model=model, messages=messages)  # type: ignore[arg-type]
    return reply.choices[0].message.content or ""


def via_responses(router: RouterProcess, model: str, text: str) -> str:
    client = openai.OpenAI(base_url=f"{router.base_url}/v1", api_key=CLIENT_KEY, max_retries=0)
    return client.responses.create(model=model, instructions="Be brief.", input=text).output_text


def via_gemini(router: RouterProcess, model: str, text: str) -> str:
    options = genai_types.HttpOptions(base_url=router.base_url, api_version="v1beta")
    client = genai.Client(api_key=CLIENT_KEY, http_options=options)
    reply = client.models.generate_content(model=model, contents=text)
    return reply.text or ""


ALL = {"anthropic": via_anthropic, "openai-chat": via_chat, "openai-responses": via_responses,
       "gemini": via_gemini}
