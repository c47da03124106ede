#!/usr/bin/env sh
# Transcribe documents page by page: each argument is a PDF, a folder (its page images
# are one document; each PDF in it is a document) or a (multi-page) TIFF. Writes
# ocr/ocr.jsonl (one line per page), ocr/<document>.md (a "## Page N" heading per page)
# and ocr/<document>.txt (pages separated by form feeds, once every page succeeded).
# Server and key come from OPENAI_BASE_URL / OPENAI_API_KEY (default: 127.0.0.1:8000).
# Safe to interrupt: run it again and only the missing pages are sent.
#   usage: examples/ocr_pages.sh report.pdf scans/contract/ scans/letter.tiff [options, e.g. --pages 1-3]
# (same as: python -m mmserve.clients.ocr ...)
set -e
# The project's .venv (made by `make serve`) when there is one, else mmserve on PATH.
MMSERVE="$(dirname "$0")/../.venv/bin/mmserve"
[ -x "$MMSERVE" ] || MMSERVE=mmserve
[ $# -gt 0 ] || { echo "usage: $0 DOCUMENT... [options]" >&2; exit 2; }
"$MMSERVE" ocr "$@" -o ocr/ocr.jsonl --warn-below 1000

# Pages the guard shrank, with sizes:
#   jq -c 'select(.resized != .size) | {document, page, size, resized, warnings}' ocr/ocr.jsonl
