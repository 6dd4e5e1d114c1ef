"""Side services behind Crossroads, end to end with the official SDKs: the
ai-studio-proxy (AIstudioProxyAPI), webai-proxy (WebAI-to-API) and
ctonew-proxy entries and the generic side-services list, against fakes of
each service (tests/fakes/side_services.py)."""

from __future__ import annotations

import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from google import genai
from google.genai import types as genai_types

from tests.fakes.common import Scenario
from tests.fakes.side_services import FakeAIStudio, FakeCtonew, FakeWebAI
from tests.providers.side_harness import CLIENT_KEY, call, listed, served, service_entry, services, wait_for

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


@pytest.fixture
def aistudio() -> Iterator[FakeAIStudio]:
    with FakeAIStudio() as fake:
        yield fake


def chat(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=CLIENT_KEY, max_retries=0)


def claude(url: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=url, api_key=CLIENT_KEY, max_retries=0)


def gemini(url: str) -> genai.Client:
    return genai.Client(api_key=CLIENT_KEY, http_options=genai_types.HttpOptions(base_url=url,
                                                                                 api_version="v1beta"))


def every_dialect(url: str, model: str, text: str) -> dict[str, str]:
    """The answer through each ingress dialect, streamed and not."""
    answers: dict[str, str] = {}
    client = chat(url)
    reply = client.chat.completions.create(model=model, messages=[{"role": "user", "content": text}])
    answers["chat"] = reply.choices[0].message.content or ""
    stream = client.chat.completions.create(model=model, stream=True, messages=[{"role": "user", "content": text}])
    answers["chat-stream"] = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    answers["responses"] = client.responses.create(model=model, input=text).output_text
    streamed = client.responses.create(model=model, input=text, stream=True)
    answers["responses-stream"] = "".join(e.delta for e in streamed if e.type == "response.output_text.delta")
    message = claude(url).messages.create(model=model, max_tokens=200, messages=[{"role": "user", "content": text}])
    answers["anthropic"] = "".join(b.text for b in message.content if b.type == "text")
    with claude(url).messages.stream(model=model, max_tokens=200,
                                     messages=[{"role": "user", "content": text}]) as events:
        answers["anthropic-stream"] = events.get_final_text()
    google = gemini(url)  # the client closes its connections when collected
    answers["gemini"] = google.models.generate_content(model=model, contents=text).text or ""
    answers["gemini-stream"] = "".join(c.text or "" for c in google.models.generate_content_stream(
        model=model, contents=text))
    return answers


# ---------------------------------------------------------------------------- AIstudioProxyAPI


def test_aistudio_models_are_discovered_and_serve_every_dialect(aistudio: FakeAIStudio, tmp_path: Path) -> None:
    with served(tmp_path, **{"ai-studio-proxy": service_entry(aistudio.base_url)}) as url:
        models = wait_for(lambda: [m for m in listed(url) if m.startswith("ai-studio-")], what="discovery")
        assert sorted(models) == sorted(f"ai-studio-{m}" for m in aistudio.models)
        answers = every_dialect(url, "ai-studio-gemini-2.5-pro", "hi there")
    assert set(answers.values()) == {"Hello from aistudio. You said: hi there"}, answers
    chats = [r for r in aistudio.requests if r.path == "/v1/chat/completions"]
    assert len(chats) == 8 and {r.body["model"] for r in chats} == {"gemini-2.5-pro"}
    assert aistudio.overlaps == 0


def test_aistudio_gets_max_output_tokens_and_its_reasoning_forms(aistudio: FakeAIStudio, tmp_path: Path) -> None:
    with served(tmp_path, **{"ai-studio-proxy": service_entry(aistudio.base_url)}) as url:
        wait_for(lambda: "ai-studio-gemini-2.5-pro" in listed(url), what="discovery")
        model = "ai-studio-gemini-2.5-pro"
        short = chat(url).chat.completions.create(model=model, max_tokens=3,
                                                  messages=[{"role": "user", "content": "one two three four five"}])
        assert short.choices[0].message.content == "Hello from aistudio."
        thought = chat(url).chat.completions.create(model=model, reasoning_effort="high",
                                                    messages=[{"role": "user", "content": "why"}])
        assert (thought.choices[0].message.model_extra or {})["reasoning_content"] == "Thinking about: why"
        off = chat(url).chat.completions.create(model="ai-studio-gemini-2.5-flash", reasoning_effort="none",
                                                messages=[{"role": "user", "content": "quick"}])
        assert "reasoning_content" not in (off.choices[0].message.model_extra or {})
        budget = claude(url).messages.create(model=model, max_tokens=4096,
                                             thinking={"type": "enabled", "budget_tokens": 2048},
                                             messages=[{"role": "user", "content": "ponder"}])
        assert [b.type for b in budget.content] == ["thinking", "text"]
        assert budget.content[0].thinking == "Thinking about: ponder"  # type: ignore[union-attr]
        with claude(url).messages.stream(model=model, max_tokens=4096,
                                         thinking={"type": "enabled", "budget_tokens": 1024},
                                         messages=[{"role": "user", "content": "stream it"}]) as events:
            final = events.get_final_message()
        assert final.content[0].type == "thinking" and final.content[0].thinking == "Thinking about: stream it"
        google = gemini(url)
        dynamic = google.models.generate_content(model=model, contents="dynamic", config=genai_types.GenerateContentConfig(
            thinking_config=genai_types.ThinkingConfig(thinking_budget=-1, include_thoughts=True)))
        parts = dynamic.candidates[0].content.parts  # type: ignore[index,union-attr]
        assert [(p.thought, p.text) for p in parts] == [  # type: ignore[union-attr]
            (True, "Thinking about: dynamic"), (None, "Hello from aistudio. You said: dynamic")]
    sent = [r.body for r in aistudio.requests if r.path == "/v1/chat/completions"]
    assert sent[-1]["reasoning_effort"] == "none"  # on, without a budget
    sent = sent[:-1]
    assert sent[0]["max_output_tokens"] == 3 and aistudio.ignored[0] == ["max_tokens", "stream_options"]
    assert [body.get("reasoning_effort") for body in sent[1:]] == [24576, 0, 2048, 1024]  # fitted to each model's budgets


def test_aistudio_native_tools_through_a_tool_loop(aistudio: FakeAIStudio, tmp_path: Path) -> None:
    with served(tmp_path, **{"ai-studio-proxy": service_entry(aistudio.base_url)}) as url:
        wait_for(lambda: "ai-studio-gemini-2.5-flash" in listed(url), what="discovery")
        client = chat(url)
        messages: list[Any] = [{"role": "user", "content": "CALL_TOOL please"}]
        first = client.chat.completions.create(model="ai-studio-gemini-2.5-flash", messages=messages,
                                               tools=[WEATHER])  # type: ignore[list-item]
        call = first.choices[0].message.tool_calls[0]  # type: ignore[index]
        assert first.choices[0].finish_reason == "tool_calls" and call.function.name == "get_weather"
        messages += [first.choices[0].message.model_dump(exclude_none=True),
                     {"role": "tool", "tool_call_id": call.id, "content": "sunny"}]
        second = client.chat.completions.create(model="ai-studio-gemini-2.5-flash", messages=messages,
                                                tools=[WEATHER])  # type: ignore[list-item]
        assert second.choices[0].message.content == "Tool result received: sunny"
    assert "tools" in [r for r in aistudio.requests if r.path == "/v1/chat/completions"][-1].body


def test_ten_concurrent_requests_reach_aistudio_one_at_a_time_in_order(aistudio: FakeAIStudio,
                                                                         tmp_path: Path) -> None:
    with served(tmp_path, **{"ai-studio-proxy": service_entry(aistudio.base_url)}) as url:
        wait_for(lambda: "ai-studio-gemini-2.5-pro" in listed(url), what="discovery")
        answers: dict[int, str] = {}
        clients = [chat(url) for _ in range(10)]
        aistudio.push(Scenario(delay=0.5))  # the first holds the page while the others line up

        def ask(number: int) -> None:
            reply = clients[number].chat.completions.create(
                model="ai-studio-gemini-2.5-pro", messages=[{"role": "user", "content": f"request {number}"}])
            answers[number] = reply.choices[0].message.content or ""

        threads = []
        for number in range(10):
            thread = threading.Thread(target=ask, args=(number,))
            thread.start()
            threads.append(thread)
            time.sleep(0.04)  # they arrive in this order
        scraped = urllib.request.urlopen(urllib.request.Request(  # the queue as /metrics shows it, mid-way
            f"{url}/metrics", headers={"authorization": f"Bearer {CLIENT_KEY}"}), timeout=10).read().decode()
        for thread in threads:
            thread.join(timeout=30)
    assert answers == {n: f"Hello from aistudio. You said: request {n}" for n in range(10)}
    waiting = [line for line in scraped.splitlines()
               if line.startswith("crossroads_service_queue{") and 'state="waiting"' in line]
    assert waiting and float(waiting[0].rsplit(" ", 1)[1]) >= 1, scraped[-1500:]
    assert aistudio.max_active == 1 and aistudio.overlaps == 0
    assert aistudio.served == [f"request {n}" for n in range(10)]


def test_several_instances_make_one_pool_each_with_its_own_queue(tmp_path: Path) -> None:
    with FakeAIStudio() as first, FakeAIStudio() as second, served(tmp_path, **{"ai-studio-proxy": [
            service_entry(first.base_url), service_entry(second.base_url)]}) as url:
        wait_for(lambda: len(services(url)) == 2 and all(s["state"] == "up" for s in services(url)),
                 what="both instances")
        wait_for(lambda: "ai-studio-gemini-2.5-pro" in listed(url), what="discovery")
        clients = [chat(url) for _ in range(6)]
        threads = [threading.Thread(target=lambda c=client: c.chat.completions.create(
            model="ai-studio-gemini-2.5-pro", messages=[{"role": "user", "content": "x"}])) for client in clients]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    assert len(first.served) + len(second.served) == 6 and first.served and second.served
    assert first.max_active == second.max_active == 1


def test_a_full_queue_and_a_long_wait_get_clear_errors(aistudio: FakeAIStudio, tmp_path: Path) -> None:
    entry = service_entry(aistudio.base_url, **{"queue-size": 1, "queue-timeout": 0.5})
    aistudio.push(Scenario(delay=1.5), Scenario(delay=1.5))
    with served(tmp_path, **{"ai-studio-proxy": entry}) as url:
        wait_for(lambda: "ai-studio-gemini-2.5-pro" in listed(url), what="discovery")
        outcomes: list[Any] = []

        def ask() -> None:
            outcomes.append(call(f"{url}/v1/chat/completions", {"model": "ai-studio-gemini-2.5-pro",
                                                                "messages": [{"role": "user", "content": "x"}]}))

        threads = [threading.Thread(target=ask) for _ in range(3)]
        for thread in threads:
            thread.start()
            time.sleep(0.1)
        for thread in threads:
            thread.join(timeout=10)
    statuses = sorted(r.status for r in outcomes)
    assert statuses == [200, 429, 503], outcomes
    by_status = {r.status: r for r in outcomes}
    assert "queue is full" in by_status[429].body["error"]["message"]
    assert by_status[429].headers["retry-after"] == "5"
    assert "did not free a slot within 0.5s" in by_status[503].body["error"]["message"]


def test_a_page_that_is_not_ready_takes_its_models_out_with_the_reason(aistudio: FakeAIStudio,
                                                                        tmp_path: Path) -> None:
    with served(tmp_path, **{"ai-studio-proxy": service_entry(aistudio.base_url)}) as url:
        wait_for(lambda: "ai-studio-gemini-2.5-pro" in listed(url), what="discovery")
        aistudio.page_ready = False
        wait_for(lambda: not any(m.startswith("ai-studio-") for m in listed(url)), what="the models to leave")
        state = services(url)[0]
        assert state["state"] == "down" and "\"isPageReady\":false" in state["reason"], state
        with pytest.raises(openai.APIStatusError) as raised:
            chat(url).chat.completions.create(model="ai-studio-gemini-2.5-pro",
                                              messages=[{"role": "user", "content": "x"}])
        assert raised.value.status_code == 503
        assert "AIstudioProxyAPI" in raised.value.message and "page not ready" in raised.value.message
        with pytest.raises(anthropic.APIStatusError) as refused:
            claude(url).messages.create(model="ai-studio-gemini-2.5-pro", max_tokens=10,
                                        messages=[{"role": "user", "content": "x"}])
        assert refused.value.status_code == 503 and refused.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]
        aistudio.page_ready = True
        started = time.monotonic()
        wait_for(lambda: "ai-studio-gemini-2.5-pro" in listed(url), what="the models to return")
        assert time.monotonic() - started < 3
        assert services(url)[0]["state"] == "up"


def test_an_unknown_prefixed_model_is_looked_up_at_once(aistudio: FakeAIStudio, tmp_path: Path) -> None:
    entry = service_entry(aistudio.base_url, **{"models-interval": 3600})
    with served(tmp_path, **{"ai-studio-proxy": entry}) as url:
        wait_for(lambda: "ai-studio-gemini-2.5-pro" in listed(url), what="discovery")
        time.sleep(2.1)  # on-demand refreshes are spaced
        aistudio.models = (*aistudio.models, "gemini-3-flash-preview")
        reply = chat(url).chat.completions.create(model="ai-studio-gemini-3-flash-preview",
                                                  messages=[{"role": "user", "content": "new"}])
        assert reply.choices[0].message.content == "Hello from aistudio. You said: new"
        with pytest.raises(openai.NotFoundError):
            chat(url).chat.completions.create(model="ai-studio-no-such-model",
                                              messages=[{"role": "user", "content": "x"}])


# ---------------------------------------------------------------------------- WebAI-to-API


def test_webai_v04_pseudo_stream_with_configured_models_and_emulated_tools(tmp_path: Path) -> None:
    with FakeWebAI("0.4") as fake, served(tmp_path, **{"webai-proxy": service_entry(
            fake.base_url, models=["gemini-3-pro"])}) as url:
        assert wait_for(lambda: services(url)[0]["state"] == "up", what="health")
        assert [m for m in listed(url) if m.startswith("webai-")] == ["webai-gemini-3-pro"]
        answers = every_dialect(url, "webai-gemini-3-pro", "hello")
        assert set(answers.values()) == {"Hello from webai. You said: hello"}, answers
        client = claude(url)
        tool = {"name": "get_weather", "description": "Weather for a city",
                "input_schema": WEATHER["function"]["parameters"]}
        messages: list[Any] = [{"role": "user", "content": "CALL_TOOL for Paris"}]
        first = client.messages.create(model="webai-gemini-3-pro", max_tokens=200, tools=[tool],  # type: ignore[list-item]
                                       messages=messages)
        assert first.stop_reason == "tool_use"
        use = next(b for b in first.content if b.type == "tool_use")
        assert use.name == "get_weather" and use.input == {"city": "x"}
        messages += [{"role": "assistant", "content": first.content},
                     {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "rain"}]}]
        with client.messages.stream(model="webai-gemini-3-pro", max_tokens=200, tools=[tool],  # type: ignore[list-item]
                                    messages=messages) as events:
            assert events.get_final_text() == "Tool result received: rain"
    streamed = [r.body for r in fake.requests if r.path == "/v1/chat/completions" and r.body.get("stream")]
    assert streamed and all("tools" not in body for body in streamed)


def test_webai_v05_sse_a_cut_stream_is_an_error_and_only_listed_models_route(tmp_path: Path) -> None:
    with FakeWebAI("0.5") as fake, served(tmp_path, **{"webai-proxy": service_entry(fake.base_url),
                                                       "transient-error-cooldown-seconds": 0}) as url:
        wait_for(lambda: "webai-gemini-3-flash" in listed(url), what="discovery")
        answers = every_dialect(url, "webai-gemini-3-flash", "hey")
        assert set(answers.values()) == {"Hello from webai. You said: hey"}, answers
        fake.push(Scenario(cut_after=3))
        received = ""
        with pytest.raises(openai.APIError) as raised:
            for chunk in chat(url).chat.completions.create(model="webai-gemini-3-flash", stream=True, messages=[
                    {"role": "user", "content": "one two three four five six"}]):
                received += (chunk.choices[0].delta.content or "") if chunk.choices else ""
        assert "without [DONE]" in str(raised.value.message)
        fake.push(Scenario(cut_after=3))
        with pytest.raises(openai.APIStatusError) as cut:
            chat(url).chat.completions.create(model="webai-gemini-3-flash",
                                              messages=[{"role": "user", "content": "whole please"}])
        assert cut.value.status_code == 502
        with pytest.raises(openai.NotFoundError):
            chat(url).chat.completions.create(model="webai-gemini-2.0-flash",
                                              messages=[{"role": "user", "content": "x"}])
    assert not [r for r in fake.requests if r.body and r.body.get("model") == "gemini-2.0-flash"]


# ---------------------------------------------------------------------------- ctonew-proxy


@pytest.fixture
def ctonew() -> Iterator[FakeCtonew]:
    with FakeCtonew(api_keys=("client-cookie",)) as fake:
        yield fake


def ctonew_entry(fake: FakeCtonew, cookie: str = "__client=client-cookie; __session=s1") -> dict[str, Any]:
    return {"ctonew-proxy": service_entry(fake.base_url, **{"api-key": cookie})}


def test_ctonew_cookie_bearer_inline_thinking_and_unknown_usage(ctonew: FakeCtonew, tmp_path: Path) -> None:
    with served(tmp_path, **ctonew_entry(ctonew)) as url:
        wait_for(lambda: "ctonew-ClaudeSonnet4_5" in listed(url), what="discovery")
        model = "ctonew-ClaudeSonnet4_5"
        answers = every_dialect(url, model, "hello")
        assert set(answers.values()) == {"Hello from ctonew. You said: hello"}, answers
        reply = chat(url).chat.completions.create(model=model, messages=[{"role": "user", "content": "why"}])
        assert reply.choices[0].message.content == "Hello from ctonew. You said: why"
        assert (reply.choices[0].message.model_extra or {})["reasoning_content"] == "Thinking about: why"
        assert reply.usage is None  # the proxy reports 0: unknown, not zero
        stream = chat(url).chat.completions.create(model=model, stream=True,
                                                   messages=[{"role": "user", "content": "stream"}])
        deltas = [c.choices[0].delta for c in stream if c.choices]
        assert "".join((d.model_extra or {}).get("reasoning_content") or "" for d in deltas) == \
            "Thinking about: stream"
        assert "".join(d.content or "" for d in deltas) == "Hello from ctonew. You said: stream"
        message = claude(url).messages.create(model=model, max_tokens=100,
                                              messages=[{"role": "user", "content": "think"}])
        assert [b.type for b in message.content] == ["thinking", "text"]
    bearer = [r for r in ctonew.requests if r.path == "/v1/chat/completions"][-1].headers["authorization"]
    assert bearer == "Bearer __client=client-cookie.....__session=s1"


def test_ctonew_errors_written_as_text_become_errors(ctonew: FakeCtonew, tmp_path: Path) -> None:
    with served(tmp_path, **ctonew_entry(ctonew, "__client=stale"), **{"transient-error-cooldown-seconds": 0}) as url:
        wait_for(lambda: "ctonew-GPT5" in listed(url), what="discovery")
        with pytest.raises(openai.APIStatusError) as raised:
            chat(url).chat.completions.create(model="ctonew-GPT5", messages=[{"role": "user", "content": "x"}])
        assert raised.value.status_code == 502 and "无法获取 JWT token" in raised.value.message
        assert "__client=stale" not in str(services(url))  # the cookie is the credential: never shown
        with pytest.raises(anthropic.APIStatusError) as streamed, claude(url).messages.stream(
                model="ctonew-GPT5", max_tokens=50, messages=[{"role": "user", "content": "x"}]) as events:
            events.get_final_text()
        assert streamed.value.status_code == 502


def test_ctonew_emulated_tool_loop_with_the_openai_sdk(ctonew: FakeCtonew, tmp_path: Path) -> None:
    with served(tmp_path, **ctonew_entry(ctonew)) as url:
        wait_for(lambda: "ctonew-GPT5" in listed(url), what="discovery")
        client = chat(url)
        messages: list[Any] = [{"role": "user", "content": "CALL_TOOL now"}]
        stream = client.chat.completions.create(model="ctonew-GPT5", messages=messages, tools=[WEATHER],  # type: ignore[list-item]
                                                stream=True)
        calls: dict[int, dict[str, str]] = {}
        finish = None
        for chunk in stream:
            for choice in chunk.choices:
                finish = choice.finish_reason or finish
                for call in choice.delta.tool_calls or []:
                    row = calls.setdefault(call.index, {"id": "", "name": "", "arguments": ""})
                    row["id"] = call.id or row["id"]
                    row["name"] += (call.function.name or "") if call.function else ""
                    row["arguments"] += (call.function.arguments or "") if call.function else ""
        assert finish == "tool_calls" and calls[0]["name"] == "get_weather"
        assert calls[0]["arguments"] == '{"city":"x"}'
        messages += [{"role": "assistant", "tool_calls": [{"id": calls[0]["id"], "type": "function", "function": {
            "name": "get_weather", "arguments": calls[0]["arguments"]}}]},
            {"role": "tool", "tool_call_id": calls[0]["id"], "content": "cloudy"}]
        second = client.chat.completions.create(model="ctonew-GPT5", messages=messages, tools=[WEATHER])  # type: ignore[list-item]
        assert second.choices[0].message.content == "Tool result received: cloudy"
    prompt = [r for r in ctonew.requests if r.path == "/v1/chat/completions"][-1].body["messages"]
    assert "get_weather" in prompt[0]["content"] and "<tool_call>" in prompt[0]["content"]


# ---------------------------------------------------------------------------- generic entries


def test_a_service_that_rejects_tools_answers_400_in_the_callers_dialect(tmp_path: Path) -> None:
    with FakeWebAI("0.5") as fake, served(tmp_path, **{"side-services": [service_entry(
            fake.base_url, name="gemweb", tools="reject")]}) as url:
        wait_for(lambda: "gemweb-gemini-3-pro" in listed(url), what="discovery")
        with pytest.raises(anthropic.BadRequestError) as refused:
            claude(url).messages.create(model="gemweb-gemini-3-pro", max_tokens=50, messages=[
                {"role": "user", "content": "x"}], tools=[{"name": "t", "input_schema": {"type": "object"}}])
        assert "cannot call tools" in refused.value.message
        with pytest.raises(openai.BadRequestError):
            chat(url).chat.completions.create(model="gemweb-gemini-3-pro", tools=[WEATHER],  # type: ignore[list-item]
                                              messages=[{"role": "user", "content": "x"}])
        reply = chat(url).chat.completions.create(model="gemweb-gemini-3-pro",
                                                  messages=[{"role": "user", "content": "no tools"}])
        assert reply.choices[0].message.content == "Hello from webai. You said: no tools"


def test_a_generic_entry_can_say_how_its_replies_are_read(ctonew: FakeCtonew, tmp_path: Path) -> None:
    entry = service_entry(ctonew.base_url, name="engine", **{
        "api-key": "__client=client-cookie", "think-tags": True, "usage": "unknown", "error-prefixes": ["错误:"],
        "tools": "emulated", "health-path": "/"})
    with served(tmp_path, **{"side-services": [entry]}) as url:
        wait_for(lambda: "engine-GPT5" in listed(url), what="discovery")
        reply = chat(url).chat.completions.create(model="engine-GPT5", messages=[{"role": "user", "content": "q"}])
        assert reply.choices[0].message.content == "Hello from ctonew. You said: q"
        assert (reply.choices[0].message.model_extra or {})["reasoning_content"] == "Thinking about: q"
        assert reply.usage is None
    plain = service_entry(ctonew.base_url, name="raw", **{"api-key": "__client=client-cookie", "health-path": "/"})
    with served(tmp_path, **{"side-services": [plain]}) as url:
        wait_for(lambda: "raw-GPT5" in listed(url), what="discovery")
        reply = chat(url).chat.completions.create(model="raw-GPT5", messages=[{"role": "user", "content": "q"}])
        assert reply.choices[0].message.content == "<think>Thinking about: q</think>Hello from ctonew. You said: q"


def test_a_service_killed_mid_run_drops_out_fails_over_and_comes_back(tmp_path: Path) -> None:
    aistudio = FakeAIStudio().start()
    port = aistudio.port
    with FakeWebAI("0.5") as webai, served(tmp_path, **{
            "ai-studio-proxy": service_entry(aistudio.base_url),
            "webai-proxy": service_entry(webai.base_url),
            "fallbacks": {"ai-studio-gemini-2.5-pro": ["webai-gemini-3-pro"]}}) as url:
        try:
            wait_for(lambda: {"ai-studio-gemini-2.5-pro", "webai-gemini-3-pro"} <= set(listed(url)),
                     what="discovery")
            ask = chat(url).chat.completions.create
            assert ask(model="ai-studio-gemini-2.5-pro", messages=[{"role": "user", "content": "a"}]).choices[
                0].message.content == "Hello from aistudio. You said: a"
            aistudio.stop()
            wait_for(lambda: not any(m.startswith("ai-studio-") for m in listed(url)), timeout=5,
                     what="the models to leave")
            moved = ask(model="ai-studio-gemini-2.5-pro", messages=[{"role": "user", "content": "b"}])
            assert moved.choices[0].message.content == "Hello from webai. You said: b"
            with pytest.raises(openai.APIStatusError) as down:
                ask(model="ai-studio-gemini-2.5-flash", messages=[{"role": "user", "content": "c"}])
            assert down.value.status_code == 503 and "AIstudioProxyAPI" in down.value.message
            assert "cannot reach it" in services(url)[0]["reason"]
            aistudio = FakeAIStudio(port=port).start()
            returned = time.monotonic()
            wait_for(lambda: "ai-studio-gemini-2.5-pro" in listed(url), timeout=5, what="the models to return")
            assert time.monotonic() - returned < 3
            back = ask(model="ai-studio-gemini-2.5-pro", messages=[{"role": "user", "content": "d"}])
            assert back.choices[0].message.content == "Hello from aistudio. You said: d"
        finally:
            aistudio.stop()


def test_side_service_keys_are_not_reported_unknown(tmp_path: Path) -> None:
    from tests.providers.side_harness import app

    served_app = app(tmp_path, **{"ai-studio-proxy": service_entry("http://127.0.0.1:9"),
                                  "webai-proxy": {"enabled": False, "endpoint": "http://127.0.0.1:9"},
                                  "ctonew-proxy": service_entry("http://127.0.0.1:9", **{"api-key": "c"}),
                                  "side-services": [service_entry("http://127.0.0.1:9", name="other")]})
    snapshot = served_app.snapshot
    assert snapshot.unknown_keys == [] and snapshot.unused_keys == []
    assert sorted(a.id.split("#")[0] for a in snapshot.accounts) == [
        "ai-studio-proxy", "ctonew-proxy", "side-services[other]"]


def test_bad_side_service_entries_are_refused_with_the_entry_named(tmp_path: Path) -> None:
    from crossroads.config import ConfigError
    from tests.providers.side_harness import app

    with pytest.raises(ConfigError, match="ai-studio-proxy: 'endpoint' must be an http"):
        app(tmp_path, **{"ai-studio-proxy": {"enabled": True, "endpoint": "localhost:2048"}})
    with pytest.raises(ConfigError, match="'tools' must be one of native, emulated, reject"):
        app(tmp_path, **{"webai-proxy": {"endpoint": "http://127.0.0.1:1", "tools": "maybe"}})
    with pytest.raises(ConfigError, match="'usage' must be reported or unknown"):
        app(tmp_path, **{"side-services": [{"name": "x", "endpoint": "http://127.0.0.1:1", "usage": "zero"}]})
    with pytest.raises(ConfigError, match=r"side-services\[0\]: each entry needs a 'name'"):
        app(tmp_path, **{"side-services": [{"endpoint": "http://127.0.0.1:1"}]})
