"""Quality and speed of methods (and selectors) on a dataset."""
