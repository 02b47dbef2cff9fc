"""``identity``: frames pass through unchanged -- the I/O baseline.

Deliberately not an ``nn.Module`` and free of torch: a run with ``--method identity`` measures
decode, select and encode alone, without paying torch's import. It follows the Method protocol
(``vdeblur.methods.base``) all the same; the engine hands its frames to the writer as decoded.
"""

from __future__ import annotations

from typing import Any

from vdeblur.methods.registry import register_method


class Identity:
    past = 0
    future = 0
    recurrent = False
    pad_multiple = 1
    is_identity = True

    def to(self, *args: Any, **kwargs: Any) -> "Identity":
        return self

    def eval(self) -> "Identity":
        return self

    def __call__(self, window: Any, state: Any = None) -> tuple[Any, Any]:
        return window[:, self.past], None


@register_method("identity", kind="passthrough", params={})
def identity() -> Identity:
    """Pass frames through unchanged (a baseline and a pipeline check)."""
    return Identity()
