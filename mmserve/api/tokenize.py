"""POST /tokenize and POST /detokenize, as vLLM names them."""

from __future__ import annotations

from litestar import Controller, Request, post

from ..normalize import normalize_tokenize, pick_route
from ..protocol.openai import (
    DetokenizeRequest,
    DetokenizeResponse,
    TokenizeRequest,
    TokenizeResponse,
    decode_request,
)
from ..serving import ChatService
from .generation import refuse_while_loading

__all__ = ["TokenizeController"]


class TokenizeController(Controller):
    tags = ["tokens"]

    @post(
        "/tokenize",
        status_code=200,
        summary="The token ids of a text or of chat messages, as the model sees them",
        description="`prompt` (a text, through the tokenizer alone) or `messages` (through the model's chat "
        "template, tools and chat_template_kwargs included). With images, `count` is the prompt's tokens "
        "with each image at the size the memory guard would plan now, and `mmserve.images` says what it "
        "would do to each; `tokens` holds each image as its placeholder.",
    )
    async def tokenize(self, request: Request, chat_service: ChatService) -> TokenizeResponse:
        tokenize = decode_request(await request.body(), TokenizeRequest)
        refuse_while_loading(chat_service)
        job = normalize_tokenize(tokenize, chat_service.routes())
        result = await chat_service.tokenize(job, tokenize.add_special_tokens)
        return TokenizeResponse(**result)

    @post("/detokenize", status_code=200, summary="The text of token ids")
    async def detokenize(self, request: Request, chat_service: ChatService) -> DetokenizeResponse:
        detokenize = decode_request(await request.body(), DetokenizeRequest)
        refuse_while_loading(chat_service)
        route = pick_route(detokenize.model, chat_service.routes(), [])
        return DetokenizeResponse(prompt=await chat_service.detokenize(route, detokenize.tokens))
