"""Model families ``mmserve synth --family NAME`` writes, by name."""

from __future__ import annotations

from . import gemma3, gemma3_wrapped, llama, qwen2, qwen3, qwen3_moe, mistral, mistral3, mixtral, gemma2, gemma3_text, phi3, gpt_oss, deepseek_v2, deepseek_v3, qwen3_next, granitemoehybrid, olmo2, cohere2, llama4, qwen3_5

__all__ = ["FAMILIES"]

FAMILIES = {f.name: f for f in (gemma3.FAMILY, gemma3_wrapped.FAMILY, llama.FAMILY, qwen2.FAMILY, qwen3.FAMILY, qwen3_moe.FAMILY, mistral.FAMILY, mistral3.FAMILY, mixtral.FAMILY, gemma2.FAMILY, gemma3_text.FAMILY, phi3.FAMILY, gpt_oss.FAMILY, deepseek_v2.FAMILY, deepseek_v3.FAMILY, qwen3_next.FAMILY, granitemoehybrid.FAMILY, olmo2.FAMILY, cohere2.FAMILY, llama4.FAMILY, qwen3_5.FAMILY)}
