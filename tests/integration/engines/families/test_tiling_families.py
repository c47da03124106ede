"""The engine hooks of Idefics3, SmolVLM, InternVL (internvl_chat) and DeepSeek-VL2 on their tiny checkpoints.

For each: ``encode`` reproduces the features ``get_input_embeddings`` computes (so the
feature cache changes nothing), greedy text with cached features equals
``mlx_vlm.generate``'s, and an image prepared and encoded on another thread with its
own stream gives the same embeddings.
"""

from __future__ import annotations

import importlib
import threading

import pytest

pytest.importorskip("mlx_vlm")

from tests.integration.guards.families.probe import picture  # noqa: E402

# (family, adapter module, image size): sizes that keep the views few (Idefics3 tiles every image to 1456 px)
FAMILIES = [
    ("idefics3", "idefics3", (400, 40)),
    ("smolvlm", "idefics3", (400, 40)),
    ("internvl_chat", "internvl_chat", (300, 300)),
    ("deepseek_vl_v2", "deepseek_vl_v2", (300, 300)),
]


class Served:
    """A tiny checkpoint loaded with mlx-vlm, a one-image prompt and its family's encode."""

    def __init__(self, family: str, adapter: str, size: tuple[int, int], directory):
        import mlx_vlm
        from mlx_vlm.prompt_utils import apply_chat_template

        importlib.import_module(f"mmserve.synth.families.{family}").FAMILY.write(directory, 0)
        self.model, self.processor = mlx_vlm.load(str(directory))
        hooks = importlib.import_module(f"mmserve.engines.families.{adapter}")
        if getattr(hooks, "after_load", None) is not None:
            hooks.after_load(self.model, self.processor)
        self.encode = hooks.encode
        self.prompt = apply_chat_template(self.processor, self.model.config, "Describe this.", num_images=1)
        self.image = picture(*size)

    def prepare(self) -> dict:
        """The processor's inputs for the image, evaluated here as the engine does (see deepseek_vl_v2's adapter)."""
        import mlx.core as mx
        from mlx_vlm.utils import prepare_inputs

        inputs = prepare_inputs(
            self.processor, images=[self.image], prompts=self.prompt,
            image_token_index=getattr(self.model.config, "image_token_index", None),
        )  # fmt: skip
        mx.eval([value for value in inputs.values() if isinstance(value, mx.array)])
        return inputs

    def embed(self, **kwargs):
        """(embeddings, pixel_values, extra inputs) as the engine computes them for the image."""
        inputs = self.prepare()
        extra = {k: v for k, v in inputs.items() if k not in ("input_ids", "pixel_values", "attention_mask")}
        embeddings = self.model.get_input_embeddings(
            inputs["input_ids"], inputs["pixel_values"], mask=inputs.get("attention_mask"), **extra, **kwargs
        ).inputs_embeds
        return embeddings, inputs["pixel_values"], extra

    def generate(self, **kwargs) -> str:
        """mlx_vlm.generate's greedy text for the prompt with the image, on prepared and evaluated inputs."""
        import mlx_vlm

        inputs = self.prepare()
        extra = {k: v for k, v in inputs.items() if k not in ("input_ids", "pixel_values", "attention_mask")}
        return mlx_vlm.generate(
            self.model, self.processor, self.prompt, input_ids=inputs["input_ids"],
            pixel_values=inputs["pixel_values"], mask=inputs.get("attention_mask"),
            max_tokens=8, temperature=0, verbose=False, **extra, **kwargs,
        ).text  # fmt: skip


@pytest.fixture(scope="module", params=FAMILIES, ids=[family for family, *_ in FAMILIES])
def served(request, tmp_path_factory):
    family, adapter, size = request.param
    return Served(family, adapter, size, tmp_path_factory.mktemp(family))


def test_cached_features_give_the_same_embeddings(served):
    """Embeddings with encode's features as cached_image_features equal the ones computed from pixels."""
    import mlx.core as mx

    plain, pixel_values, extra = served.embed()
    cached, _, _ = served.embed(cached_image_features=served.encode(served.model, pixel_values, extra))
    assert mx.array_equal(plain, cached).item()


def test_greedy_text_with_cached_features_equals_generate(served):
    """mlx_vlm.generate gives the same greedy text with the cached features, and other text with garbage ones."""
    import mlx.core as mx

    _, pixel_values, extra = served.embed()
    features = served.encode(served.model, pixel_values, extra)
    text = served.generate()
    assert served.generate(cached_image_features=features) == text
    assert served.generate(cached_image_features=mx.zeros_like(features) + 3.0) != text


def test_another_thread_with_its_own_stream_gives_the_same_embeddings(served):
    """prepare_inputs, get_input_embeddings and encode on a worker thread's own stream match the loading thread."""
    import mlx.core as mx

    expected, pixel_values, extra = served.embed()
    features = served.encode(served.model, pixel_values, extra)
    mx.eval(expected, features)  # a lazy graph built on this thread's stream cannot be evaluated on another
    result = {}

    def work():
        with mx.stream(mx.new_stream(mx.cpu)):
            embeddings, pixels, more = served.embed()
            encoded = served.encode(served.model, pixels, more)
            result["same"] = mx.array_equal(embeddings, expected).item() and mx.array_equal(encoded, features).item()

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert result == {"same": True}


def test_deepseek_vl_v2_greedy_text_is_the_same_every_time(tmp_path):
    """With after_load, mlx_vlm.generate preparing the image itself gives one greedy text (lazy inputs gave two)."""
    import mlx_vlm

    served = Served("deepseek_vl_v2", "deepseek_vl_v2", (300, 300), tmp_path)
    texts = {
        mlx_vlm.generate(
            served.model, served.processor, served.prompt, image=[served.image], max_tokens=2, temperature=0,
            verbose=False,
        ).text
        for _ in range(8)
    }  # fmt: skip
    assert len(texts) == 1
