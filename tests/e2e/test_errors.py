"""Every non-2xx answer is an OpenAI error envelope with the right status, code and param."""

from __future__ import annotations

import threading

import httpx
import openai
import pytest

from tests.conftest import start_server, stop_server

pytestmark = pytest.mark.slow

CHAT = "/v1/chat/completions"


def post(server, body, **kwargs) -> httpx.Response:
    if isinstance(body, (bytes, str)):
        kwargs["content"] = body
    else:
        kwargs["json"] = body
    headers = {**server.headers, **kwargs.pop("headers", {})}
    return httpx.post(server.base_url + CHAT, headers=headers, timeout=60, **kwargs)


def envelope(response: httpx.Response) -> dict:
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error


def user(content) -> dict:
    return {"messages": [{"role": "user", "content": content}], "max_tokens": 4}


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "auto"}, "messages"),
        ({"messages": "hello"}, "messages"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "wizard", "content": "hi"}]}, "messages[0].role"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        ({"messages": [{"role": "user", "content": [{"type": "audio", "x": 1}]}]}, "messages[0].content[0].type"),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "image_url", "image_url": {}}]}
                ]
            },
            "messages[0].content[1].image_url.url",
        ),
        ({**user("hi"), "max_tokens": "many"}, "max_tokens"),
        ({**user("hi"), "max_tokens": 0}, "max_tokens"),
        ({**user("hi"), "temperature": 9}, "temperature"),
        ({**user("hi"), "top_p": 0}, "top_p"),
        ({**user("hi"), "n": 9}, "n"),
        ({**user("hi"), "stop": ["a"] * 40}, "stop"),
        ({**user("hi"), "stop": [""]}, "stop[0]"),
        ({**user("hi"), "stream": "yes"}, "stream"),
        ({**user("hi"), "logprobs": "yes"}, "logprobs"),
        ({**user("hi"), "logprobs": False, "top_logprobs": 3}, "top_logprobs"),
        ({**user("hi"), "functions": [{"name": "f"}]}, "functions"),
        ({**user("hi"), "tool_choice": "required"}, "tool_choice"),
        ({**user("hi"), "response_format": {"type": "xml"}}, "response_format.type"),
    ],
)
def test_malformed_request_is_400_naming_the_field(server, body, param):
    """A malformed field gives 400 invalid_request_error with param naming that field."""
    response = post(server, body)
    assert response.status_code == 400
    error = envelope(response)
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param


def test_features_not_served_are_refused_when_asked_for_and_accepted_when_off(server):
    """The legacy functions are refused, not ignored; the empty or off forms of features pass."""
    refused = envelope(post(server, {**user("hi"), "functions": [{"name": "f"}]}))
    assert refused["code"] == "unsupported_parameter"
    off = {"logprobs": False, "top_logprobs": 0, "tools": [], "response_format": {"type": "text"}}
    assert post(server, {**user("hi"), **off}).status_code == 200


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b'"text"', b""])
def test_body_that_is_not_a_json_object_is_400(server, raw):
    """Invalid JSON or a non-object body is a 400 with code invalid_json."""
    response = post(server, raw, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert envelope(response)["code"] == "invalid_json"


def test_unknown_model_is_404_model_not_found(server):
    """Naming a model that is not served gives 404 model_not_found."""
    response = post(server, {**user("hi"), "model": "gpt-17"})
    assert response.status_code == 404
    error = envelope(response)
    assert error["code"] == "model_not_found" and error["param"] == "model"


def test_image_sent_to_text_model_is_400_naming_the_part(server):
    """An image part sent to the text model names the offending part."""
    body = user(
        [{"type": "text", "text": "hi"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]
    )
    response = post(server, {**body, "model": "text"})
    assert response.status_code == 400
    assert envelope(response)["param"] == "messages[0].content[1].image_url"


def test_undecodable_image_is_400_without_echoing_payload(server):
    """Garbage image bytes give 400 naming the part, and the payload is not echoed."""
    payload = "Z2FyYmFnZSBieXRlcyBub3QgYW4gaW1hZ2U=" * 4
    response = post(server, user([{"type": "image_url", "image_url": {"url": f"data:image/png;base64,{payload}"}}]))
    assert response.status_code == 400
    error = envelope(response)
    assert error["param"] == "messages[0].content[0].image_url"
    assert payload[:20] not in response.text


def test_unknown_route_is_404_envelope(server):
    """An unknown path answers 404 in the error envelope."""
    response = httpx.get(server.base_url + "/v1/nothing-here", timeout=10)
    assert response.status_code == 404
    assert envelope(response)["type"] == "not_found_error"


def test_wrong_method_is_405_envelope(server):
    """GET on the chat route answers 405 in the error envelope."""
    response = httpx.get(server.base_url + CHAT, timeout=10)
    assert response.status_code == 405
    envelope(response)


def test_prompt_over_context_is_400_context_length_exceeded(server):
    """A prompt longer than the model's context is refused with context_length_exceeded."""
    response = post(server, user("word " * 20_000))
    assert response.status_code == 400
    assert envelope(response)["code"] == "context_length_exceeded"


def test_huge_max_tokens_is_clamped_and_reported(server):
    """max_tokens of ten million is clamped to what fits, and the clamp is reported."""
    response = post(server, {**user("hi"), "max_tokens": 10_000_000, "stop": ["e", "a", "o", "i", " "]})
    assert response.status_code == 200
    assert response.json()["mmserve"]["max_tokens_clamped_from"] == 10_000_000


def test_health_needs_no_key_but_other_routes_do(strict):
    """With an API key configured, /health and the API docs are open and every other route answers 401."""
    for path in ("/health", "/docs", "/docs/openapi.json"):
        assert httpx.get(strict.base_url + path, timeout=10).status_code == 200, path
    routes = [
        ("GET", "/ready"),
        ("GET", "/v1/models"),
        ("POST", CHAT),
        ("GET", "/admin/status"),
        ("POST", "/v1/completions"),
    ]
    routes += [("POST", "/v1/responses"), ("POST", "/tokenize"), ("POST", "/detokenize"), ("GET", "/metrics")]
    for method, path in routes:
        response = httpx.request(method, strict.base_url + path, json=user("hi"), timeout=10)
        assert response.status_code == 401, path
        assert envelope(response)["type"] == "authentication_error"
    wrong = httpx.get(strict.base_url + "/v1/models", headers={"Authorization": "Bearer wrong"}, timeout=10)
    assert wrong.status_code == 401


def test_openai_sdk_with_key_works(strict):
    """The openai SDK with the right key is served."""
    client = openai.OpenAI(base_url=strict.base_url + "/v1", api_key=strict.api_key, max_retries=0)
    completion = client.chat.completions.create(
        model="auto", messages=[{"role": "user", "content": "hi"}], max_tokens=3
    )
    assert completion.choices[0].message.content is not None


def test_body_over_limit_is_413(strict):
    """A request body over --max-body-bytes answers 413 in the envelope."""
    response = post(strict, user("x" * 300_000))
    assert response.status_code == 413
    assert envelope(response)["code"] == "request_too_large"


def test_full_queue_is_503_with_retry_after(strict):
    """When the engine's queue is full a new request is refused at once with 503 and Retry-After."""
    long = {**user("go on"), "max_tokens": 2000, "temperature": 0}
    results: list[httpx.Response] = []
    threads = [threading.Thread(target=lambda: results.append(post(strict, long))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    refused = [r for r in results if r.status_code == 503]
    assert refused, [r.status_code for r in results]
    assert refused[0].headers["retry-after"].isdigit()
    assert envelope(refused[0])["type"] == "server_overloaded"
    assert any(r.status_code == 200 for r in results)


@pytest.fixture(scope="module")
def strict(models, tmp_path_factory):
    """A server with an API key, a small body limit and one text worker with a queue of one."""
    srv = start_server(
        models,
        tmp_path_factory.mktemp("strict-logs"),
        "--max-body-bytes", "200000", "--queue-size", "1", "--max-batch-size", "1", "--text-replicas", "1",
        api_key="sk-test-key",
    )  # fmt: skip
    yield srv
    stop_server(srv)


def test_cors_is_off_by_default(server):
    """Without --cors-origin no CORS headers are sent, even to a cross-origin preflight."""
    response = httpx.options(
        server.base_url + CHAT,
        headers={"Origin": "https://example.org", "Access-Control-Request-Method": "POST"},
        timeout=10,
    )
    assert "access-control-allow-origin" not in response.headers


def test_cors_allows_configured_origins(cors):
    """With --cors-origin the configured origin gets CORS headers and others do not."""
    allowed = httpx.get(cors.base_url + "/health", headers={"Origin": "https://app.example.org"}, timeout=10)
    assert allowed.headers["access-control-allow-origin"] == "https://app.example.org"
    other = httpx.get(cors.base_url + "/health", headers={"Origin": "https://evil.example"}, timeout=10)
    assert other.headers.get("access-control-allow-origin") != "https://evil.example"


@pytest.fixture(scope="module")
def cors(models, tmp_path_factory):
    srv = start_server(models, tmp_path_factory.mktemp("cors-logs"), "--cors-origin", "https://app.example.org")
    yield srv
    stop_server(srv)
