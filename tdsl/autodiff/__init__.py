"""tdsl.autodiff: reverse-mode differentiation of tensor expressions (`td.grad`).

Where it sits: on top of `tdsl/lang` only. It reads a stage DAG and writes more stages
(the adjoints), so everything after it (schedules, auto_schedule, lowering, backends)
sees ordinary compute definitions.

- `grad.py`: `td.grad`, the walk from the output back to the inputs, and the sum of
  several consumers' contributions into one `<name>_grad` stage.
- `reductions.py`: where a stage's adjoint enters its body (a broadcast for a sum, the
  first extremum, stage `<C>_argmax`, for a max or min).
- `derivatives.py`: the local partial derivative of each expression node.
- `adjoint.py`: index-map inversion; a read `A[f(v)]` becomes a gather over A's index
  space (a scatter-add, `td.update`, for reads at data-dependent indices).
- `affine.py`: affine forms of index expressions (parse, rebuild, prove simple bounds).
- `stages.py`: naming (computes with readable axes, fresh reduction axes).
"""

from .grad import grad

__all__ = ["grad"]
