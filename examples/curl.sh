#!/usr/bin/env sh
# The chat API with curl: text, an image (data URI from a local file), and streaming.
#   usage: examples/curl.sh [image.png]        (server: make serve, or .venv/bin/mmserve serve --demo)
set -e
BASE="${OPENAI_BASE_URL:-http://127.0.0.1:8000/v1}"
AUTH="Authorization: Bearer ${OPENAI_API_KEY:-none}"   # checked only if the server has --api-key

echo "== text (headers include X-MMServe-Route: text)"
curl -sS -i "$BASE/chat/completions" -H "$AUTH" -H "Content-Type: application/json" \
  -d '{"model": "auto", "messages": [{"role": "user", "content": "Say hello"}], "max_tokens": 32}'
echo

echo "== image: routed to the vision model; the mmserve object reports original vs resized size"
IMAGE="${1:-}"
if [ -z "$IMAGE" ]; then  # no image given: a red 32x32 PNG
  TYPE=png
  B64="iVBORw0KGgoAAAANSUhEUgAAACAAAAAgCAIAAAD8GO2jAAAAKklEQVR42u3NMQEAAAQAMATRP4pYSvBtBZbTHZ8qngkEAoFAIBAIBIIrC+AFAUQz669uAAAAAElFTkSuQmCC"
else
  case "$IMAGE" in *.jpg|*.jpeg|*.JPG|*.JPEG) TYPE=jpeg ;; *.webp) TYPE=webp ;; *.gif) TYPE=gif ;; *) TYPE=png ;; esac
  B64=$(base64 < "$IMAGE" | tr -d '\n')
fi
# The body is written to a file: a large image would not fit on the command line.
BODY=$(mktemp); trap 'rm -f "$BODY"' EXIT
printf '{"model": "auto", "max_tokens": 32, "messages": [{"role": "user", "content": [
  {"type": "image_url", "image_url": {"url": "data:image/%s;base64,%s"}},
  {"type": "text", "text": "What is in this image?"}]}]}' "$TYPE" "$B64" > "$BODY"
curl -sS "$BASE/chat/completions" -H "$AUTH" -H "Content-Type: application/json" --data-binary @"$BODY"
echo

echo "== streaming: server-sent events, ending with data: [DONE]"
curl -sSN "$BASE/chat/completions" -H "$AUTH" -H "Content-Type: application/json" \
  -d '{"model": "auto", "stream": true, "max_tokens": 16, "messages": [{"role": "user", "content": "Count to five"}]}'
