"""Integration tests for the random-weight model synthesizer (mmserve.synth)."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
from mlx.utils import tree_flatten
from PIL import Image

from mmserve import cli, synth

PROMPTS = [
    "Hello, how are you?",
    "Write a poem about the sea.",
    "What is 2+2?",
    "Tell me about computers and memory.",
    "The quick brown fox",
    "Describe the market in the old town.",
]


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    return synth.synthesize(tmp_path_factory.mktemp("synth") / "seed0", seed=0)


@pytest.fixture(scope="session")
def text_model(models):
    from mlx_lm import load

    return load(str(models.text))


@pytest.fixture(scope="session")
def vision_model(models):
    from mlx_vlm import load

    return load(str(models.vision))


def _images() -> dict[str, Image.Image]:
    noise = np.random.default_rng(0).integers(0, 256, (224, 224, 3), dtype=np.uint8)
    ramp = np.linspace(0, 255, 224, dtype=np.uint8)
    gradient = np.stack(np.broadcast_arrays(ramp[None, :], ramp[:, None], 255 - ramp[None, :]), -1)
    return {
        "red": Image.new("RGB", (224, 224), (255, 0, 0)),
        "noise": Image.fromarray(noise),
        "gradient": Image.fromarray(np.ascontiguousarray(gradient)),
    }


def _greedy_text(text_model, prompt: str, max_tokens: int = 16) -> list[int]:
    from mlx_lm import stream_generate
    from mlx_lm.sample_utils import make_sampler

    model, tokenizer = text_model
    chat = tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=False
    )
    sampler = make_sampler(temp=0.0)
    return [r.token for r in stream_generate(model, tokenizer, chat, max_tokens=max_tokens, sampler=sampler)]


def test_an_interrupted_synthesis_leaves_no_half_written_model(tmp_path, monkeypatch):
    """The demo reuses any model whose config exists: a run that fails midway must publish none."""

    def fail(*args):
        raise OSError("disk full")

    monkeypatch.setattr(synth, "_write_image_processor", fail)
    with pytest.raises(OSError):
        synth.synthesize(tmp_path)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    synth.synthesize(tmp_path)
    models = synth.synthesize(tmp_path)  # over an existing pair
    assert sorted(p.name for p in tmp_path.iterdir()) == ["text", "vision"]
    assert (models.text / "config.json").exists() and (models.vision / "preprocessor_config.json").exists()


def test_text_model_loads_with_mlx_lm(text_model):
    """The text directory loads with mlx_lm.load as a qwen2 model with the Qwen tokenizer."""
    model, tokenizer = text_model
    assert model.model_type == "qwen2"
    assert model.args.max_position_embeddings == 4096
    assert tokenizer.eos_token == "<|im_end|>"
    assert synth.TOKEN_IDS["<|im_end|>"] in tokenizer.eos_token_ids
    assert tokenizer.convert_tokens_to_ids("<|im_start|>") == synth.TOKEN_IDS["<|im_start|>"]


def test_vision_model_loads_with_mlx_vlm(vision_model):
    """The vision directory loads with mlx_vlm.load with ids matching its tokenizer."""
    model, processor = vision_model
    assert type(processor).__name__ == "Qwen2_5_VLProcessor"
    tokenizer = processor.tokenizer
    for key, token in [
        ("image_token_id", "<|image_pad|>"),
        ("video_token_id", "<|video_pad|>"),
        ("vision_start_token_id", "<|vision_start|>"),
    ]:
        assert getattr(model.config, key) == tokenizer.convert_tokens_to_ids(token)
    vision = model.config.vision_config
    assert max(vision.fullatt_block_indexes) < vision.depth
    assert vision.out_hidden_size == model.config.text_config.hidden_size


def test_same_seed_is_byte_identical_and_seed_changes_weights(models, tmp_path):
    """The same seed reproduces every file byte for byte; another seed changes only weights."""
    again = synth.synthesize(tmp_path / "again", seed=0)
    other = synth.synthesize(tmp_path / "other", seed=1)
    for kind in ("text", "vision"):
        ref = getattr(models, kind)
        names = sorted(p.name for p in ref.iterdir())
        assert names == sorted(p.name for p in getattr(again, kind).iterdir())
        for name in names:
            same = (ref / name).read_bytes() == (getattr(again, kind) / name).read_bytes()
            assert same, f"{kind}/{name} differs for the same seed"
            differs = (ref / name).read_bytes() != (getattr(other, kind) / name).read_bytes()
            assert differs == name.endswith(".safetensors"), f"{kind}/{name}"


def test_different_prompts_give_different_greedy_continuations(text_model):
    """Greedy continuations depend on the prompt, are not one repeated token, and do not stop at once."""
    outputs = [_greedy_text(text_model, p) for p in PROMPTS]
    assert len({tuple(o) for o in outputs}) >= len(PROMPTS) - 1
    for tokens in outputs:
        assert len(tokens) == 16
        assert len(set(tokens)) >= 8


def test_different_images_give_different_greedy_continuations(vision_model):
    """Greedy continuations of the vision model depend on the image."""
    from mlx_vlm import generate
    from mlx_vlm.prompt_utils import apply_chat_template

    model, processor = vision_model
    prompt = apply_chat_template(processor, model.config, "Describe this image.", num_images=1)
    outputs = {
        name: generate(model, processor, prompt, image=[image], max_tokens=12, temperature=0.0, verbose=False).text
        for name, image in _images().items()
    }
    assert len(set(outputs.values())) == len(outputs), outputs
    assert all(text.strip() for text in outputs.values())


def test_448_image_yields_256_image_tokens(vision_model):
    """The loaded processor turns a 448x448 image into 256 image tokens, like Qwen2.5-VL."""
    model, processor = vision_model
    image_processor = processor.image_processor
    assert (image_processor.patch_size, image_processor.merge_size) == (14, 2)
    assert (image_processor.min_pixels, image_processor.max_pixels) == (3136, 12845056)
    prompt = "<|vision_start|><|image_pad|><|vision_end|>What is this?"
    inputs = processor(images=[Image.new("RGB", (448, 448), (0, 128, 0))], text=[prompt])
    ids = np.array(inputs["input_ids"]).ravel().tolist()
    assert ids.count(model.config.image_token_id) == 256
    assert np.array(inputs["image_grid_thw"]).tolist() == [[1, 32, 32]]


def test_vision_chat_template_places_image_parts(vision_model):
    """The vision chat template puts a vision block where each image part is."""
    from mlx_vlm.prompt_utils import apply_chat_template

    model, processor = vision_model
    block = "<|vision_start|><|image_pad|><|vision_end|>"
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Compare "},
                {"type": "image_url", "image_url": {"url": "data:,"}},
                {"type": "text", "text": " with "},
                {"type": "image"},
            ],
        }
    ]
    rendered = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert rendered == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        f"<|im_start|>user\nCompare {block} with {block}<|im_end|>\n<|im_start|>assistant\n"
    )
    plain = apply_chat_template(processor, model.config, "Hi", num_images=1)
    assert plain.endswith(f"<|im_start|>user\n{block}Hi<|im_end|>\n<|im_start|>assistant\n")


def test_text_chat_template_accepts_list_content(text_model):
    """The text chat template is Qwen2.5 ChatML and joins list-of-text-parts content."""
    _, tokenizer = text_model
    messages = [{"role": "user", "content": [{"type": "text", "text": "Hello "}, {"type": "text", "text": "world"}]}]
    rendered = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert rendered.startswith("<|im_start|>system\nYou are Qwen")
    assert rendered.endswith("<|im_start|>user\nHello world<|im_end|>\n<|im_start|>assistant\n")


@pytest.mark.parametrize("profile", sorted(synth.PROFILES))
def test_profile_plans_match_loader_shapes(profile):
    """Every profile's planned tensors match the parameters the mlx_lm / mlx_vlm models declare."""
    from mlx_lm.utils import _get_classes
    from mlx_vlm.utils import get_model_and_args, update_module_configs

    plans = synth.plan(profile)
    config = copy.deepcopy(plans["text"].config)
    model_class, args_class = _get_classes(config)
    text = model_class(args_class.from_dict(config))
    config = copy.deepcopy(plans["vision"].config)
    arch, _ = get_model_and_args(config)
    vision_config = update_module_configs(arch.ModelConfig.from_dict(config), arch, config, ["text", "vision"])
    vision = arch.Model(vision_config)
    for model, planned in [(text, plans["text"]), (vision, plans["vision"])]:
        declared = {k: tuple(v.shape) for k, v in tree_flatten(model.parameters())}
        assert declared == {t.name: t.shape for t in planned.tensors}


def test_large_profiles_have_real_qwen_shapes():
    """The benchmark profiles carry Qwen2.5-1.5B and Qwen2.5-VL-3B shapes and dtypes."""
    small = synth.plan("qwen2.5-1.5b")["text"]
    assert small.config["hidden_size"] == 1536 and small.config["num_hidden_layers"] == 28
    assert small.config["torch_dtype"] == "bfloat16"
    vl = synth.plan("qwen2.5-vl-3b")["vision"]
    assert vl.config["hidden_size"] == 2048 and vl.config["num_hidden_layers"] == 36
    assert vl.config["vision_config"]["fullatt_block_indexes"] == [7, 15, 23, 31]
    dtypes = {t.name.split(".")[0]: t.dtype for t in vl.tensors}
    assert dtypes == {"language_model": "BF16", "vision_tower": "F32"}
    assert all(t.nbytes < synth.SHARD_BYTES for t in vl.tensors)


def test_cli_main_writes_both_models(tmp_path, capsys):
    """mmserve synth DIR writes loadable config files for both models."""
    assert cli.main(["synth", str(tmp_path), "--seed", "3"]) == 0
    for kind in ("text", "vision"):
        config = json.loads((tmp_path / kind / "config.json").read_text())
        assert config["vocab_size"] == synth.VOCAB_SIZE
    assert "text:" in capsys.readouterr().out
