"""Which worker of an engine takes a request, and what a worker's environment holds."""

from __future__ import annotations

import pytest

from mmserve.engines.supervisor import EngineClient, EnginePool, WorkerSpec, worker_environment
from mmserve.errors import EngineUnavailableError, OverloadedError

SPEC = WorkerSpec(engine="text", path="/models/text", name="text", max_batch=2, queue_size=1)


def pool_of(*states: str) -> EnginePool:
    """A pool whose workers are in ``states``, without starting any process."""
    pool = EnginePool(SPEC)
    for state in states:
        worker = EngineClient(SPEC)
        worker.state = state
        pool.workers.append(worker)
    return pool


def test_the_least_busy_ready_worker_takes_the_request():
    """A request goes to the ready worker with the fewest requests in flight."""
    pool = pool_of("ready", "ready", "restarting")
    pool.workers[0].inflight = 2
    pool.workers[1].inflight = 1
    assert pool.admit() is pool.workers[1]
    assert pool.workers[1].inflight == 2


def test_affinity_breaks_ties():
    """Among equally busy workers the affinity picks one, the same one every time."""
    pool = pool_of("ready", "ready")
    picked = [pool.admit(affinity=7) for _ in range(2)]  # the second finds its first choice busier
    assert picked == [pool.workers[1], pool.workers[0]]
    for worker in pool.workers:
        worker.leave()
    assert pool.admit(affinity=8) is pool.workers[0]


def test_a_full_pool_refuses_at_once():
    """When the least busy worker's queue is full too, the request gets a 503 (OverloadedError)."""
    pool = pool_of("ready", "ready")
    for worker in pool.workers:
        worker.inflight = SPEC.max_batch + SPEC.queue_size
    with pytest.raises(OverloadedError):
        pool.admit()


def test_no_ready_worker_is_a_503_that_says_why():
    """With every worker down the request is refused with the first worker's state."""
    pool = pool_of("restarting", "starting")
    with pytest.raises(EngineUnavailableError, match=r"text engine is not ready \(restarting\)"):
        pool.admit()
    assert pool.describe()["state"] == "restarting"


def test_one_ready_worker_keeps_the_engine_ready():
    """The engine is ready while any of its workers is; the pool counts them all."""
    pool = pool_of("restarting", "ready")
    assert pool.is_ready and pool.state == "ready"
    assert pool.describe()["replicas"] == 2


def test_text_workers_keep_float32_matmuls_exact():
    """A text worker gets MLX_ENABLE_TF32=0 unless the server's environment sets it; a vision worker keeps TF32."""
    env = worker_environment("text", {"PATH": "/bin"})
    assert env["PATH"] == "/bin" and env["MLX_ENABLE_TF32"] == "0"
    assert worker_environment("text", {"MLX_ENABLE_TF32": "1"})["MLX_ENABLE_TF32"] == "1"
    assert "MLX_ENABLE_TF32" not in worker_environment("vision", {"PATH": "/bin"})


def test_workers_turn_off_mlx_cache_thrashing_check():
    """Every worker gets MLX_ENABLE_CACHE_THRASHING_CHECK=0, so that mlx's CUDA caches evict instead of
    raising once a long-lived process has seen many shapes; a value the server's environment sets is kept."""
    for engine in ("text", "vision"):
        assert worker_environment(engine, {})["MLX_ENABLE_CACHE_THRASHING_CHECK"] == "0"
        kept = worker_environment(engine, {"MLX_ENABLE_CACHE_THRASHING_CHECK": "1"})
        assert kept["MLX_ENABLE_CACHE_THRASHING_CHECK"] == "1"


def test_vision_workers_share_one_malloc_arena():
    """A vision worker gets glibc's MALLOC_ARENA_MAX=1 unless the server's environment sets it; a text worker keeps
    glibc's default."""
    assert worker_environment("vision", {})["MALLOC_ARENA_MAX"] == "1"
    assert worker_environment("vision", {"MALLOC_ARENA_MAX": "4"})["MALLOC_ARENA_MAX"] == "4"
    assert "MALLOC_ARENA_MAX" not in worker_environment("text", {})
