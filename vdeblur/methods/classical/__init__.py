"""Classical (non-learned) methods: identity, unsharp masking, Wiener and Richardson-Lucy
deconvolution with a given or blindly estimated PSF (srn-scale-recurrent-analysis.md, section 2.1).

Importing this package registers the methods (``vdeblur.methods.registry`` imports it on first use).
"""

from vdeblur.methods.classical import deconv, methods, psf  # noqa: F401  (methods registers on import)
from vdeblur.methods.classical.deconv import (
    RichardsonLucy,
    UnsharpMask,
    WienerDeconv,
    estimate_motion_psf,
    richardson_lucy,
    unsharp_mask,
    wiener_deconv,
)
from vdeblur.methods.classical.psf import gaussian_psf, motion_psf, parse_psf

__all__ = [
    "RichardsonLucy",
    "UnsharpMask",
    "WienerDeconv",
    "estimate_motion_psf",
    "gaussian_psf",
    "motion_psf",
    "parse_psf",
    "richardson_lucy",
    "unsharp_mask",
    "wiener_deconv",
]
