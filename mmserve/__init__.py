"""mmserve: an OpenAI-compatible multimodal inference server for MLX with a memory guard."""

__version__ = "0.1.0"
