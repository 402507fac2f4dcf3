"""Int-RA training, evaluation and data preparation (PyTorch lives only in the modules that need it).

Importing this package does not import torch: the data tools run with the base install.
"""
