#!/usr/bin/env sh
# Transcribe documents page by page: each argument is a folder of page images or a
# (multi-page) TIFF. Writes ocr/ocr.jsonl (one line per page) and ocr/<document>.txt
# (pages separated by form feeds) once all of a document's pages succeeded.
# Warns when the server shrank a page below 1000 px (small print may be illegible).
#   usage: examples/ocr_pages.sh scans/contract/ scans/letter.tiff [options]
# (same as: python -m mmserve.clients.ocr ...)
set -e
# The project's .venv (made by `make serve`) when there is one, else mmserve on PATH.
MMSERVE="$(dirname "$0")/../.venv/bin/mmserve"
[ -x "$MMSERVE" ] || MMSERVE=mmserve
[ $# -gt 0 ] || { echo "usage: $0 DOCUMENT... [options]" >&2; exit 2; }
"$MMSERVE" ocr "$@" -o ocr/ocr.jsonl --base-url "${OPENAI_BASE_URL:-http://127.0.0.1:8000/v1}" --warn-below 1000

# Pages the guard shrank, with sizes:
#   jq -c 'select(.resized != .original) | {document, page, original, resized}' ocr/ocr.jsonl
