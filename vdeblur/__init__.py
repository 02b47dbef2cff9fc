"""vdeblur: remove motion blur and noise from videos."""

__version__ = "0.1.0"


def restore_video(*args, **kwargs):
    """See :func:`vdeblur.restore.restore_video` (imported lazily: it pulls in torch and PyAV)."""
    from vdeblur.restore import restore_video as _rv

    return _rv(*args, **kwargs)


def list_methods():
    """The registered methods, as :class:`vdeblur.methods.registry.MethodSpec`."""
    from vdeblur.methods.registry import list_methods as _lm

    return _lm()
