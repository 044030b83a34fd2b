"""Classic architectures, built from ``striate.nn`` and registered by name.

    import striate.models as models
    model = models.lenet5()                          # or models.get_model("lenet5")
    models.list_models()                             # ['lenet5', 'mlp']
"""
from striate.models.lenet import LeNet5, lenet5
from striate.models.mlp import MLP, mlp
from striate.models.registry import ModelEntry, get_model, list_models, model_entry, register_model

__all__ = ["LeNet5", "lenet5", "MLP", "mlp", "get_model", "list_models", "model_entry", "register_model",
           "ModelEntry"]
