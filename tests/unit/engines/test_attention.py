"""Plain prompt attention computes what mlx's attention computes, and takes only the calls it should."""

from __future__ import annotations

import mlx.core as mx
import pytest

from mmserve.engines import attention


def qkv(batch, query_heads, kv_heads, length, keys, dim=64, dtype=mx.float32):
    mx.random.seed(length * 31 + keys)
    return (
        mx.random.normal((batch, query_heads, length, dim)).astype(dtype),
        mx.random.normal((batch, kv_heads, keys, dim)).astype(dtype),
        mx.random.normal((batch, kv_heads, keys, dim)).astype(dtype),
    )


MASKS = {
    "none": lambda b, h, q, k: None,
    "causal": lambda b, h, q, k: "causal",
    "bool, shared by heads": lambda b, h, q, k: mx.random.uniform(shape=(b, 1, q, k)) > 0.3,
    "bool, per head": lambda b, h, q, k: mx.random.uniform(shape=(b, h, q, k)) > 0.3,
    "additive": lambda b, h, q, k: mx.where(mx.random.uniform(shape=(b, 1, q, k)) > 0.3, 0.0, -1e9),
}


@pytest.mark.parametrize("mask", MASKS)
@pytest.mark.parametrize(("query_heads", "kv_heads"), [(4, 4), (16, 2)])
@pytest.mark.parametrize(("length", "keys"), [(7, 7), (5, 12)])  # a whole prompt; a prompt after cached keys
def test_plain_attention_equals_mlx_attention(mask, query_heads, kv_heads, length, keys):
    q, k, v = qkv(2, query_heads, kv_heads, length, keys)
    m = MASKS[mask](2, query_heads, length, keys)
    expected = mx.fast.scaled_dot_product_attention(q, k, v, scale=0.125, mask=m)
    # On the CPU backend mlx's attention is these same ops, so the results are equal, not close.
    assert mx.array_equal(attention.plain_attention(q, k, v, scale=0.125, mask=m), expected)


def test_plain_attention_keeps_bfloat16():
    q, k, v = qkv(1, 16, 2, 33, 33, dim=128, dtype=mx.bfloat16)
    out = attention.plain_attention(q, k, v, scale=128**-0.5, mask="causal")
    assert out.dtype == mx.bfloat16
    assert mx.array_equal(out, mx.fast.scaled_dot_product_attention(q, k, v, scale=128**-0.5, mask="causal"))


def test_only_prompts_within_the_score_limit_take_plain_ops(monkeypatch):
    calls = []

    def fused(queries, keys, values, *, scale, mask=None, sinks=None, **kwargs):
        calls.append(queries.shape[2])
        return mx.zeros(queries.shape)

    monkeypatch.setattr(mx.fast, "scaled_dot_product_attention", fused)
    attention.use_plain_prompt_attention(max_scores=2 * 4 * 8 * 8)
    attention.use_plain_prompt_attention(max_scores=2 * 4 * 8 * 8)  # again: still over the same fused kernel
    sdpa = mx.fast.scaled_dot_product_attention
    assert sdpa.fused is fused

    q, k, v = qkv(2, 4, 4, 8, 8)
    assert mx.array_equal(
        sdpa(q, k, v, scale=0.1, mask="causal"), attention.plain_attention(q, k, v, scale=0.1, mask="causal")
    )
    assert calls == []
    sdpa(*qkv(2, 4, 4, 1, 8), scale=0.1)  # one query: a decode step
    sdpa(*qkv(2, 4, 4, 9, 9), scale=0.1, mask="causal")  # more scores than the limit
    sdpa(q, k, v, scale=0.1, sinks=mx.zeros((4,)))  # attention sinks: only the fused kernel has them
    assert calls == [1, 9, 8]
