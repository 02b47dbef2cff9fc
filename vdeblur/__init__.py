"""vdeblur: remove motion blur and noise from videos."""

__version__ = "0.1.0"


def run_file(*args, **kwargs):
    """See :func:`vdeblur.jobs.run_file` (imported lazily: it pulls in torch and PyAV)."""
    from vdeblur.jobs import run_file as _run

    return _run(*args, **kwargs)


def list_methods():
    """The registered methods, as :class:`vdeblur.methods.registry.MethodSpec`."""
    from vdeblur.methods.registry import list_methods as _lm

    return _lm()
