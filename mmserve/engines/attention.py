"""Prompt attention on CUDA without a cuDNN graph for every prompt shape.

mlx's CUDA backend runs the attention of a prompt (more than one query) through cuDNN,
which builds and keeps a graph for each new combination of query length, key length and
layout. Building one takes tens of milliseconds on an H100, longer with a mask array, and
a server sees new prompt lengths all the time: every prompt, or every prompt after a
cached prefix, paid it (docs/performance.md). The attention of a prompt of a few hundred
tokens takes far less than that. So ``use_plain_prompt_attention`` sends attention with up
to ``PLAIN_MAX_SCORES`` query-key scores to plain matmul and softmax kernels, exactly what
mlx computes where no fused kernel applies, whose launch needs no per-shape build; longer
prompts, and each decoded token's single query, keep mlx's fused kernels. The score
matrix it materialises stays under ``PLAIN_MAX_SCORES`` elements (128 MiB in bfloat16).
"""

from __future__ import annotations

import mlx.core as mx

__all__ = ["PLAIN_MAX_SCORES", "plain_attention", "use_plain_prompt_attention"]

PLAIN_MAX_SCORES = 1 << 26  # batch x heads x queries x keys; 2048 x 2048 for one prompt of 16 heads


def plain_attention(queries: mx.array, keys: mx.array, values: mx.array, *, scale: float, mask=None) -> mx.array:
    """``softmax(scale * Q @ K.T + mask) @ V`` in separate ops, as mlx's own fallback computes it."""
    batch, query_heads, length, _ = queries.shape
    kv_heads, key_length = keys.shape[1], keys.shape[2]
    repeats = query_heads // kv_heads
    queries = queries * mx.array(scale, queries.dtype)
    if repeats > 1:  # grouped-query attention: each KV head serves `repeats` query heads
        queries = queries.reshape(batch, kv_heads, repeats, length, -1)
        keys, values = mx.expand_dims(keys, 2), mx.expand_dims(values, 2)
    scores = queries @ keys.swapaxes(-1, -2)
    if isinstance(mask, str):  # "causal", aligned to the last key as mlx's is
        offset = key_length - length
        mask = mx.arange(offset, offset + length)[:, None] >= mx.arange(key_length)[None]
    if mask is not None:
        if repeats > 1 and mask.ndim >= 3:
            if mask.shape[-3] == 1:
                mask = mx.expand_dims(mask, -3)
            else:
                mask = mask.reshape(*mask.shape[:-3], kv_heads, repeats, *mask.shape[-2:])
        if mask.dtype == mx.bool_:
            scores = mx.where(mask, scores, mx.array(mx.finfo(scores.dtype).min, scores.dtype))
        else:
            scores = scores + mask.astype(scores.dtype)
    out = mx.softmax(scores, axis=-1, precise=True) @ values
    return out.reshape(batch, query_heads, length, -1) if repeats > 1 else out


def use_plain_prompt_attention(max_scores: int = PLAIN_MAX_SCORES) -> None:
    """Route prompt attention of up to ``max_scores`` scores through ``plain_attention``, process-wide.

    mlx-lm's and mlx-vlm's models call ``mx.fast.scaled_dot_product_attention`` at run time,
    so replacing it reaches every model either loads, before or after this call.
    """
    fused = getattr(mx.fast.scaled_dot_product_attention, "fused", mx.fast.scaled_dot_product_attention)

    def scaled_dot_product_attention(queries, keys, values, *, scale, mask=None, sinks=None, **kwargs):
        batch, heads, length, _ = queries.shape
        if length == 1 or sinks is not None or kwargs or batch * heads * length * keys.shape[2] > max_scores:
            return fused(queries, keys, values, scale=scale, mask=mask, sinks=sinks, **kwargs)
        return plain_attention(queries, keys, values, scale=scale, mask=mask)

    scaled_dot_product_attention.fused = fused
    mx.fast.scaled_dot_product_attention = scaled_dot_product_attention
