"""Model classes, registered with the transformers Auto classes on import."""

from transformers import AutoConfig, AutoModel

from .deltatok import DeltaTokConfig, DeltaTokModel
from .deltaworld import DeltaWorldConfig, DeltaWorldForForecasting


def _register() -> None:
    for config_class, model_class in ((DeltaTokConfig, DeltaTokModel), (DeltaWorldConfig, DeltaWorldForForecasting)):
        try:
            AutoConfig.register(config_class.model_type, config_class)
        except ValueError:  # already registered (module re-imported)
            pass
        try:
            AutoModel.register(config_class, model_class)
        except ValueError:
            pass


_register()

__all__ = ["DeltaTokConfig", "DeltaTokModel", "DeltaWorldConfig", "DeltaWorldForForecasting"]
