"""Frontends: models written for other frameworks, turned into tdsl tensors.

`tdsl.frontends.onnx.import_model(model)` reads an ONNX model (a path or an
`onnx.ModelProto`) into (outputs, inputs, params): the graph as `tdsl.nn` operators, its
inputs as placeholders, its weights as placeholders with their arrays. The `onnx` package
is imported only when a model is imported.

>>> from tdsl.frontends import import_onnx
>>> outputs, inputs, params = import_onnx("model.onnx")
"""

from __future__ import annotations


def import_onnx(model, **options):
    """`tdsl.frontends.onnx.import_model` (see there), importing `onnx` on first use."""
    from .onnx import import_model
    return import_model(model, **options)


__all__ = ["import_onnx"]
