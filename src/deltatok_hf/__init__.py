"""deltatok-hf: DeltaTok / DeltaWorld generative world models for the Hugging Face ecosystem."""

__version__ = "0.1.0"
