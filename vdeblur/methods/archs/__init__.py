"""Architecture modules: nn.Modules taking hyperparameters only."""
