"""Architecture modules: nn.Modules taking hyperparameters only; each network's module registers
its method(s) at its bottom (``vdeblur.methods.neural.register_net``)."""
