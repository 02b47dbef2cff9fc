"""Random-init networks for tests: built through the Python API only, never offered as a method."""

import torch

from vdeblur.methods.neural import ARCHS, TwoStage, build_net
from vdeblur.weights.store import save_state_dict


def random_net(name):
    torch.manual_seed(0)
    if name == "mlfa":
        from vdeblur.methods.archs.atrous import ATROUS_VARIANTS
        from vdeblur.methods.archs.mlfa import MLFA_VARIANTS

        return TwoStage(ATROUS_VARIANTS["small"], MLFA_VARIANTS["small"])
    return build_net(ARCHS[name][0], "small")[0]


def random_weights(name, tmp_path):
    """A random-init weights file: only through the Python API, only for tests."""
    net = random_net(name)
    path = tmp_path / f"{name}.safetensors"
    save_state_dict(net.state_dict(), path, half=False)
    return net.eval(), str(path)
