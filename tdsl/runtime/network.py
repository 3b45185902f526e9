"""A compiled network as the runtime sees it: a Module over the network's inputs and
outputs whose call takes the inputs only and returns the outputs.

The library's manifest marks a network (`"network": {...}`); `td.load` then returns a
`NetworkModule`. Calls go through the Module's plan (the checks in C, the same messages
for a wrong shape or dtype); the outputs are allocated here, one NumPy array each.
"""

from __future__ import annotations

import numpy as np

from ..errors import TdslTypeError
from .module import Module


class NetworkModule(Module):
    """A network library: `net(x)` returns the output (a list for several outputs).

    >>> net = td.load("model.so")
    >>> y = net(x)
    """

    def __call__(self, *inputs, num_threads: int | None = None):
        ins = [t for t in self.args if t not in self.outputs]
        if len(inputs) != len(ins):
            names = ", ".join(t.name for t in ins)
            raise TdslTypeError(f"the network takes {len(ins)} input array(s) ({names}); got "
                                f"{len(inputs)}")
        outs = [np.empty(tuple(int(d.value) for d in t.shape), t.dtype) for t in self.outputs]
        super().__call__(*inputs, *outs, num_threads=num_threads)
        return outs[0] if len(outs) == 1 else outs

    def run(self, *arrays, num_threads: int | None = None) -> None:
        """The in-place call of a Module: inputs then preallocated outputs."""
        Module.__call__(self, *arrays, num_threads=num_threads)

    def time(self, *inputs, repeat: int = 5, number: int = 1):
        """Seconds per inference (the outputs allocated once, outside the timing)."""
        outs = [np.empty(tuple(int(d.value) for d in t.shape), t.dtype) for t in self.outputs]
        return super().time(*inputs, *outs, repeat=repeat, number=number)

    def __repr__(self) -> str:
        ins = [t.name for t in self.args if t not in self.outputs]
        return f"<NetworkModule {self.signature.name}: ({', '.join(ins)}) -> " \
               f"({', '.join(t.name for t in self.outputs)})>"
