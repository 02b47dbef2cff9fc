"""Random-init networks for tests: built through the Python API only, never offered as a method."""

import torch

from vdeblur.methods.neural import make_untrained
from vdeblur.weights.store import save_state_dict


def n_params(module: torch.nn.Module) -> int:
    """How many parameters ``module`` holds (every tensor's elements, trainable or not)."""
    return sum(p.numel() for p in module.parameters())


def random_net(name):
    torch.manual_seed(0)
    return make_untrained(name, "small")[0].net


def random_weights(name, tmp_path):
    """A random-init weights file for ``name`` (small variant) and the network it holds."""
    net = random_net(name)
    path = tmp_path / f"{name}.safetensors"
    save_state_dict(net.state_dict(), path, half=False)
    return net.eval(), str(path)
