"""Every rung of the plan ladder, the context rules and measure-only mode."""

from __future__ import annotations

import pytest

from guards import (
    AspectRatioError,
    ContextTooLongError,
    GiB,
    ImageRequest,
    ModelMemory,
    NeverFitsError,
    PlanError,
    VisionCost,
    VisionSpec,
    plan_image,
    plan_request,
    smart_resize,
)

SPEC = VisionSpec()
KV = 36864  # Qwen2.5-VL-3B: 36 layers x 2 KV heads x 128 x bf16 x (K, V)
MODEL = ModelMemory(
    weights_bytes=4 * GiB,
    kv_bytes_per_token=KV,
    context_length=32768,
    vision=VisionCost(c0=2.5e8, c1=0.0, c2=64.0),
)
PHOTO = ImageRequest(4000, 3000)


def plan(**overrides):
    arguments = {
        "text_tokens": 100,
        "images": [PHOTO],
        "max_tokens": 512,
        "model": MODEL,
        "spec": SPEC,
        "budget_bytes": 64 * GiB,
        "held_bytes": 0,
        "max_image_side": 1024,
    }
    arguments.update(overrides)
    return plan_request(**arguments)


def need(image_side: int | None, text_tokens: int = 100, max_tokens: int = 512) -> int:
    """Bytes a request holds with PHOTO planned at ``image_side`` (what the tests budget for)."""
    image = plan_image(4000, 3000, max_side=image_side, spec=SPEC)
    return MODEL.vision.bytes_for(image.patches) + KV * (text_tokens + image.tokens + max_tokens)


def test_small_image_with_room_is_admitted_as_the_processor_sizes_it():
    """A 640x480 image on an idle, roomy server is admitted at the processor's own size."""
    result = plan(images=[ImageRequest(640, 480)])
    assert result.decision == "admit"
    assert result.images[0].resized == smart_resize(640, 480, SPEC)
    assert result.max_tokens == 512 and result.max_tokens_clamped_from is None


def test_large_image_starts_at_the_tier_side_even_with_room():
    """A 4000x3000 photo is planned at the tier's 1024 px even when memory is plentiful."""
    result = plan()
    assert result.images[0].resized == (1036, 756)
    assert result.images_resized == 1


def test_planned_size_is_kept_by_the_processor():
    """The planned size is on the processor's grid, so the processor does not resize again."""
    resized = plan().images[0].resized
    assert smart_resize(*resized, SPEC) == resized


def test_prompt_tokens_count_text_and_image_tokens():
    """prompt_tokens is the text plus the planned image tokens."""
    result = plan()
    assert result.prompt_tokens == 100 + result.image_tokens == 100 + (1036 // 28) * (756 // 28)


def test_peak_is_weights_largest_encode_kv_and_held():
    """planned_peak = weights + largest image encode (images go one by one) + KV + held."""
    result = plan(images=[PHOTO, ImageRequest(640, 480)], held_bytes=123)
    largest = max(image.patches for image in result.images)
    kv = KV * (result.prompt_tokens + result.max_tokens)
    assert result.reserve_bytes == MODEL.vision.bytes_for(largest) + kv
    assert result.planned_peak_bytes == MODEL.weights_bytes + result.reserve_bytes + 123


def test_tight_memory_shrinks_the_image_one_rung():
    """Just too little memory for 1024 px plans the image one x0.85 rung down (870 px)."""
    budget = MODEL.weights_bytes + need(1024) - 1
    result = plan(budget_bytes=budget)
    assert result.images[0].resized == plan_image(4000, 3000, max_side=870, spec=SPEC).resized
    assert result.max_tokens == 512 and result.planned_peak_bytes <= budget


def test_shrinking_keeps_the_aspect_ratio():
    """A shrunk image keeps its 4:3 shape within one grid cell."""
    width, height = plan(budget_bytes=MODEL.weights_bytes + need(600)).images[0].resized
    assert abs(width / height - 4 / 3) < 28 / height


def test_shrinking_stops_at_the_legibility_floor_then_clamps_max_tokens():
    """At the 224 px floor the image stops shrinking and max_tokens is clamped instead."""
    budget = MODEL.weights_bytes + need(224, max_tokens=300)
    result = plan(budget_bytes=budget, max_tokens=4000)
    assert max(result.images[0].resized) == 224
    assert result.max_tokens == 300 and result.max_tokens_clamped_from == 4000


def test_floor_is_configurable():
    """min_image_side moves the floor."""
    budget = MODEL.weights_bytes + need(336, max_tokens=100)
    result = plan(budget_bytes=budget, max_tokens=4000, min_image_side=336)
    assert max(result.images[0].resized) == 336


def test_images_below_the_floor_are_not_enlarged():
    """A 100x80 image under memory pressure stays at the processor's size for it."""
    small = plan_image(100, 80, max_side=None, spec=SPEC)
    budget = MODEL.weights_bytes + MODEL.vision.bytes_for(small.patches) + KV * (100 + small.tokens + 50)
    result = plan(images=[ImageRequest(100, 80)], budget_bytes=budget, max_tokens=4000)
    assert result.images[0].resized == smart_resize(100, 80, SPEC) and result.max_tokens == 50


def test_text_only_request_is_clamped_to_the_kv_that_fits():
    """Without images, a KV-bound request gets max_tokens cut to what fits."""
    budget = MODEL.weights_bytes + KV * (100 + 1000)
    result = plan(images=[], max_tokens=5000, budget_bytes=budget)
    assert result.max_tokens == 1000 and result.max_tokens_clamped_from == 5000


def test_request_that_fits_only_on_an_idle_server_is_queued():
    """Fits the budget alone but not beside what others hold: decision "queue"."""
    budget = MODEL.weights_bytes + need(1024)
    assert plan(budget_bytes=budget, held_bytes=0).decision == "admit"
    assert plan(budget_bytes=budget, held_bytes=1).decision == "queue"


def test_plan_shape_does_not_depend_on_load():
    """Sizes and max_tokens are the same on an idle and a busy server."""
    budget = MODEL.weights_bytes + need(870)
    idle = plan(budget_bytes=budget, held_bytes=0)
    busy = plan(budget_bytes=budget, held_bytes=10 * GiB)
    assert (idle.images, idle.max_tokens) == (busy.images, busy.max_tokens)


def test_weights_over_budget_never_fit():
    """When the weights alone exceed the budget, NeverFitsError says nothing fits."""
    with pytest.raises(NeverFitsError) as caught:
        plan(budget_bytes=3 * GiB)
    assert "nothing" in caught.value.would_fit and "weights" in caught.value.message


def test_never_fits_names_the_image_size_that_would():
    """An image too costly even at the floor gets a 413 naming a longer side that fits."""
    target = plan_image(4000, 3000, max_side=140, spec=SPEC)
    budget = MODEL.weights_bytes + MODEL.vision.bytes_for(target.patches) + KV * (100 + target.tokens + 16)
    with pytest.raises(NeverFitsError) as caught:
        plan(budget_bytes=budget, max_tokens=16)
    would_fit = caught.value.would_fit
    side = int(would_fit.split("no larger than ")[1].split(" px")[0])
    assert 140 <= side < 224 and would_fit in str(caught.value)
    assert plan(budget_bytes=budget, max_tokens=16, images=[ImageRequest(side, side * 3 // 4)]).decision == "admit"


def test_never_fits_names_the_prompt_length_that_would():
    """A text prompt too long for memory gets a 413 naming the longest prompt that fits."""
    budget = MODEL.weights_bytes + KV * 1000
    with pytest.raises(NeverFitsError) as caught:
        plan(images=[], text_tokens=5000, budget_bytes=budget)
    assert "a prompt of at most 984 tokens with max_tokens=16" == caught.value.would_fit


def test_never_fits_when_no_image_fits_at_all():
    """If even a tiny image cannot be encoded, the 413 says to send no images."""
    budget = MODEL.weights_bytes + 10**8
    with pytest.raises(NeverFitsError) as caught:
        plan(budget_bytes=budget)
    assert caught.value.would_fit.startswith("no images")


def test_never_fits_is_a_plan_error():
    """The HTTP layer can catch every guard refusal as PlanError."""
    assert issubclass(NeverFitsError, PlanError) and issubclass(ContextTooLongError, PlanError)


def test_prompt_over_context_is_refused():
    """Text alone over the context raises ContextTooLongError with both numbers."""
    with pytest.raises(ContextTooLongError) as caught:
        plan(images=[], text_tokens=40000)
    assert (caught.value.prompt_tokens, caught.value.context_length) == (40000, 32768)


def test_prompt_filling_the_context_exactly_is_refused():
    """A prompt that leaves no token for the completion is refused."""
    with pytest.raises(ContextTooLongError):
        plan(images=[], text_tokens=32768)


def test_images_shrink_until_the_prompt_fits_the_context():
    """Images too big for a small context are shrunk until the prompt leaves room for the answer."""
    small = ModelMemory(MODEL.weights_bytes, KV, context_length=1000, vision=MODEL.vision)
    result = plan(model=small)
    assert result.images[0].tokens < 999
    assert result.prompt_tokens + result.max_tokens <= 1000
    assert result.max_tokens >= 16


def test_image_tokens_count_towards_the_context_at_the_floor():
    """When even the smallest images leave no room, the error counts their tokens."""
    tiny = ModelMemory(MODEL.weights_bytes, KV, context_length=120, vision=MODEL.vision)
    with pytest.raises(ContextTooLongError) as caught:
        plan(model=tiny)
    assert caught.value.image_tokens > 0
    assert caught.value.prompt_tokens == 100 + caught.value.image_tokens


def test_measure_only_mode_refuses_images_over_the_context():
    """Without the guard nothing is shrunk, so an image over the context is refused."""
    small = ModelMemory(MODEL.weights_bytes, KV, context_length=1000, vision=MODEL.vision)
    with pytest.raises(ContextTooLongError) as caught:
        plan(model=small, guard=False)
    assert caught.value.image_tokens > 900


def test_max_tokens_past_the_context_is_clamped():
    """prompt + max_tokens over the context clamps max_tokens to what is left."""
    small = ModelMemory(MODEL.weights_bytes, KV, context_length=1000, vision=MODEL.vision)
    result = plan(model=small, images=[], max_tokens=2000)
    assert result.max_tokens == 900 and result.max_tokens_clamped_from == 2000


def test_huge_max_tokens_is_clamped_not_refused():
    """max_tokens=10,000,000 becomes the context left."""
    result = plan(images=[], max_tokens=10_000_000)
    assert result.max_tokens == 32768 - 100 and result.max_tokens_clamped_from == 10_000_000


def test_missing_max_tokens_defaults_to_the_cap():
    """max_tokens=None becomes default_max_tokens, and is not reported as clamped."""
    result = plan(images=[], max_tokens=None, default_max_tokens=2048)
    assert result.max_tokens == 2048 and result.max_tokens_clamped_from is None


def test_missing_max_tokens_defaults_to_the_context_left():
    """max_tokens=None on a nearly full context becomes what is left."""
    result = plan(images=[], text_tokens=32000, max_tokens=None)
    assert result.max_tokens == 768 and result.max_tokens_clamped_from is None


def test_low_detail_images_are_planned_small():
    """detail="low" plans the image at 448 px instead of the tier's 1024."""
    result = plan(images=[ImageRequest(4000, 3000, detail="low")])
    assert result.images[0].resized == plan_image(4000, 3000, max_side=448, spec=SPEC).resized


def test_wide_image_keeps_its_aspect():
    """4000x400 is planned about 10:1."""
    width, height = plan(images=[ImageRequest(4000, 400)]).images[0].resized
    assert (width, height) == (1036, 112)


def test_tall_image_keeps_its_aspect():
    """300x6000 is planned about 1:20 (the short side is one 28-px cell wider than exact)."""
    width, height = plan(images=[ImageRequest(300, 6000)]).images[0].resized
    assert height == 1036 and width == 56


def test_thin_strip_keeps_its_shape_past_the_max_side():
    """A 6000x30 strip keeps 200:1 by planning 5600x28 rather than squashing it to 512 px."""
    result = plan(images=[ImageRequest(6000, 30)], max_image_side=512)
    assert result.images[0].resized == (5600, 28)


def test_aspect_ratio_over_200_is_refused():
    """7000x30 (233:1) raises AspectRatioError before any sizing."""
    with pytest.raises(AspectRatioError):
        plan(images=[ImageRequest(7000, 30)])


def test_no_guard_leaves_sizing_to_the_processor():
    """guard=False plans a 4000x3000 photo at the processor's own size, not the tier's."""
    result = plan(guard=False)
    assert result.images[0].resized == smart_resize(4000, 3000, SPEC)


def test_no_guard_does_not_clamp_or_refuse_for_memory():
    """guard=False admits a request far over the budget and still reports its peak."""
    result = plan(guard=False, budget_bytes=GiB, max_tokens=4000)
    assert result.decision == "admit" and result.max_tokens == 4000
    assert result.planned_peak_bytes > GiB and result.max_tokens_clamped_from is None


def test_no_guard_still_refuses_context_overflow():
    """guard=False keeps the context rule: the model cannot take more tokens."""
    with pytest.raises(ContextTooLongError):
        plan(guard=False, images=[], text_tokens=40000)


def test_images_for_a_text_model_are_a_programming_error():
    """Images with spec=None raise ValueError (routing should have prevented it)."""
    with pytest.raises(ValueError, match="no images"):
        plan(spec=None)


def test_text_model_plans_without_vision():
    """A text-only model (vision=None, spec=None) plans KV only."""
    text = ModelMemory(weights_bytes=GiB, kv_bytes_per_token=1000, context_length=4096)
    result = plan(model=text, spec=None, images=[], max_tokens=100)
    assert result.reserve_bytes == 1000 * 200


def test_unknown_detail_is_refused():
    """detail other than auto/low/high is a ValueError."""
    with pytest.raises(ValueError, match="detail"):
        ImageRequest(10, 10, detail="ultra")


def test_zero_max_tokens_is_refused():
    """max_tokens below 1 is a ValueError (the HTTP layer validates it first)."""
    with pytest.raises(ValueError, match="max_tokens"):
        plan(max_tokens=0)


def test_high_detail_starts_at_the_ceiling():
    """detail="high" plans a 4000x3000 photo at the ceiling (2048 px) instead of the tier's 1024."""
    result = plan(images=[ImageRequest(4000, 3000, detail="high")], ceiling_image_side=2048)
    assert result.images[0].resized == plan_image(4000, 3000, max_side=2048, spec=SPEC).resized


def test_high_detail_without_a_ceiling_stays_at_the_tier_side():
    """With no ceiling above the tier's side, detail="high" changes nothing."""
    result = plan(images=[ImageRequest(4000, 3000, detail="high")])
    assert result.images[0].resized == plan().images[0].resized


def test_asked_side_is_bounded_by_the_ceiling():
    """An image asking for 5000 px starts at the 1536 px ceiling; one asking for 600 at 600."""
    big = plan(images=[ImageRequest(4000, 3000, max_side=5000)], ceiling_image_side=1536)
    small = plan(images=[ImageRequest(4000, 3000, max_side=600)], ceiling_image_side=1536)
    assert big.images[0].resized == plan_image(4000, 3000, max_side=1536, spec=SPEC).resized
    assert small.images[0].resized == plan_image(4000, 3000, max_side=600, spec=SPEC).resized


def test_high_detail_still_shrinks_for_memory():
    """Too little memory for the 2048 px ceiling: the ladder shrinks a high-detail image one rung."""
    budget = MODEL.weights_bytes + need(2048) - 1
    result = plan(images=[ImageRequest(4000, 3000, detail="high")], ceiling_image_side=2048, budget_bytes=budget)
    assert result.images[0].resized == plan_image(4000, 3000, max_side=1741, spec=SPEC).resized
    assert result.planned_peak_bytes <= budget


def test_min_side_refuses_rather_than_shrink_below_it():
    """An image's min_side raises the floor: memory for 600 px only is a refusal when it asks for 1000."""
    budget = MODEL.weights_bytes + need(600)
    assert max(plan(budget_bytes=budget).images[0].resized) <= 616
    with pytest.raises(NeverFitsError):
        plan(images=[ImageRequest(4000, 3000, min_side=1000)], budget_bytes=budget, max_tokens=512)


def test_snapping_to_the_grid_is_not_shrinking():
    """A 320x200 image only rounded to the 28 px grid is snapped, not shrunk; a 4000x3000 photo
    fitted to the tier's side is shrunk (and its snap is part of that, not counted apart)."""
    small = plan(images=[ImageRequest(320, 200)])
    assert small.images[0].resized == (308, 196)
    assert (small.images[0].shrunk, small.images[0].snapped) == (False, True)
    assert (small.images_shrunk, small.images_snapped) == (0, 1)
    large = plan()
    assert (large.images[0].shrunk, large.images[0].snapped) == (True, False)
    assert (large.images_shrunk, large.images_snapped) == (1, 0)
