#!/usr/bin/env sh
# Caption every image under a folder into captions.jsonl (one JSON line per image),
# HEIC photos included; files that are not images are named, not silently skipped.
# Safe to interrupt: run it again and only the missing images are sent.
# Exit code 1 if any image failed; --retry-failed re-sends images the server refused.
# Server and key come from OPENAI_BASE_URL / OPENAI_API_KEY (default: 127.0.0.1:8000).
#   usage: examples/caption_folder.sh ~/Pictures/trip [options, e.g. --exclude 'raw/*' --sidecar --csv captions.csv]
# (same as: python -m mmserve.clients.caption ...)
set -e
# The project's .venv (made by `make serve`) when there is one, else mmserve on PATH.
MMSERVE="$(dirname "$0")/../.venv/bin/mmserve"
[ -x "$MMSERVE" ] || MMSERVE=mmserve
dir="${1:?usage: $0 FOLDER [options]}"; shift
"$MMSERVE" caption "$dir" -o captions.jsonl "$@"

# The captions, as "path<TAB>caption":
#   jq -r 'select(.error == null) | [.path, .caption] | @tsv' captions.jsonl
