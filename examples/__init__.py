"""Programs that use tdsl end to end: training networks on the digits data set
(`python examples/train_mlp.py`, `python examples/train_cnn.py`, or with `-m`)."""
