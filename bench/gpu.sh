#!/usr/bin/env bash
# One whole measurement on a CUDA machine with realistic shapes (Qwen2.5-VL-3B / Qwen2.5-3B).
# Usage (from the project root, after mlx[cuda13] is installed there):
#   bash bench/gpu.sh guard   # synthesize the models if needed, then guard predicted-vs-measured
#   bash bench/gpu.sh serve   # the serving benchmark against mlx_lm.server and mlx_vlm.server
#   bash bench/gpu.sh probe   # text-engine burst timings (first-shape compiles, allocator)
#   bash bench/gpu.sh ocr     # pages per minute for a 20-page PDF, naive client vs mmserve ocr
# Results go to $OUT (or bench/results): JSON, logs and the markdown sections.
set -euo pipefail
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
OUT=${OUT:-bench/results}
MODELS=${MODELS:-/tmp/mmserve-qwen2.5-vl-3b}
LABEL=${LABEL:-$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | tr ' ' '-')}
mkdir -p "$OUT"

if [ ! -f "$MODELS/vision/config.json" ]; then
  time python3 -m mmserve.cli synth "$MODELS" --profile qwen2.5-vl-3b
fi

case "${1:-guard}" in
  guard)
    # 24 GB budget: the 1792 px square (19 GB of encoder memory unguarded) must be shrunk.
    python3 bench/guard_memory.py --models "$MODELS" --budget 24GB --max-image-side 1792 \
      --safety-limit 30GB --label "$LABEL-qwen2.5-vl-3b" --out "$OUT/guard.json" \
      | tee "$OUT/guard.log"
    ;;
  ocr)
    # Pages per minute for a 20-page PDF: a naive client against mmserve ocr (bench/ocr_pdf.py).
    python3 -m mmserve.cli serve --text-model "$MODELS/text" --vision-model "$MODELS/vision" --port 8731 \
      > "$OUT/ocr-serve.log" 2>&1 &
    server=$!
    python3 bench/ocr_pdf.py --base-url http://127.0.0.1:8731/v1 --wait-ready 600 --pages 20 --max-tokens 64 \
      --side 1024 --side 0 --label "$LABEL-qwen2.5-vl-3b" --out "$OUT/ocr-pdf.json" 2>&1 | grep -v warning | tee "$OUT/ocr.log"
    kill "$server"; wait "$server" || true
    ;;
  probe)
    python3 bench/batch_probe.py --model "$MODELS/text" 2>&1 | tee "$OUT/probe.log"
    ;;
  serve)
    python3 bench/run.py --models "$MODELS" --label "$LABEL-qwen2.5-vl-3b" --out "$OUT/benchmarks.md" \
      ${BENCH_ARGS:-} 2>&1 | tee "$OUT/serve.log"
    cp bench/results/*.json "$OUT/" 2>/dev/null || true
    ;;
esac
