"""Command-line options shared by the batch clients."""

from __future__ import annotations

import argparse

__all__ = ["add_common_arguments", "non_negative_int", "positive_int", "prompt_from"]


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {value}")
    return value


def add_common_arguments(parser: argparse.ArgumentParser, *, prompt: str, max_tokens: int) -> None:
    server = parser.add_argument_group("server")
    server.add_argument(
        "--base-url",
        help="OpenAI-compatible API root (default: $OPENAI_BASE_URL, else http://127.0.0.1:8000/v1)",
    )
    server.add_argument("--api-key", help="bearer key (default: $OPENAI_API_KEY, else 'none')")
    server.add_argument(
        "--model", default="auto", help="model id (default: %(default)s: mmserve routes images to its vision model)"
    )
    server.add_argument("--timeout", type=float, default=600.0, help="seconds per request (default: %(default)s)")
    server.add_argument(
        "--retries",
        type=non_negative_int,
        default=8,
        help="retries of overload (429/503), 5xx and connection errors (default: %(default)s)",
    )

    gen = parser.add_argument_group("generation")
    gen.add_argument("--prompt", default=prompt, help="question asked about every image (default: %(default)r)")
    gen.add_argument("--prompt-file", metavar="FILE", help="read the prompt from FILE (instead of --prompt)")
    gen.add_argument("--max-tokens", type=positive_int, default=max_tokens, help="(default: %(default)s)")
    gen.add_argument("--temperature", type=float, default=0.0, help="(default: %(default)s)")

    run = parser.add_argument_group("run")
    run.add_argument(
        "-j",
        "--concurrency",
        type=positive_int,
        help="requests in flight (default: enough to fill the server's batches, as its /v1/models advertises)",
    )
    run.add_argument(
        "--retry-failed", action="store_true", help="also redo items an earlier run recorded as permanently failed"
    )
    run.add_argument("-q", "--quiet", action="store_true", help="no progress line; warnings and failures still print")


def prompt_from(args: argparse.Namespace) -> str:
    """The prompt: the contents of --prompt-file when given, else --prompt."""
    if getattr(args, "prompt_file", None):
        with open(args.prompt_file, encoding="utf-8") as file:
            text = file.read().strip()
        if not text:
            raise ValueError(f"{args.prompt_file} is empty")
        return text
    return args.prompt
