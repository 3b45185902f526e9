"""Programs that use tdsl end to end: training networks on the digits data set
(`python -m examples.train_mlp`, `python -m examples.train_cnn`)."""
