#!/usr/bin/env sh
# Caption every image under a folder into captions.jsonl (one JSON line per image).
# Safe to interrupt: run it again and only the missing images are sent.
# Exit code 1 if any image failed; --retry-failed re-sends images the server refused.
#   usage: examples/caption_folder.sh ~/Pictures/trip [extra options, e.g. --max-tokens 64]
# (same as: python -m mmserve.clients.caption ...)
set -e
# The project's .venv (made by `make serve`) when there is one, else mmserve on PATH.
MMSERVE="$(dirname "$0")/../.venv/bin/mmserve"
[ -x "$MMSERVE" ] || MMSERVE=mmserve
dir="${1:?usage: $0 FOLDER [options]}"; shift
"$MMSERVE" caption "$dir" -o captions.jsonl --base-url "${OPENAI_BASE_URL:-http://127.0.0.1:8000/v1}" --concurrency 4 "$@"

# The captions, as "path<TAB>caption":
#   jq -r 'select(.error == null) | [.path, .caption] | @tsv' captions.jsonl
