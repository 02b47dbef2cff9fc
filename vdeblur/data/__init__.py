"""Synthetic test data: partially blurred clips with their sharp ground truth (see ``synth``)."""

from __future__ import annotations

from vdeblur.data.synth import SynthClip, synth_clip

__all__ = ["SynthClip", "synth_clip"]
