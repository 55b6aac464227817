"""The ``jupyter`` toolset (ours, SPEC 11): kernels and notebooks of the hosting server.

``JupyterToolset`` is the toolset; ``JupyterHost`` the seam a host fills (the server extension
with its kernel and contents managers, `StandaloneHost` anywhere else).
"""

from .host import (
    Entry,
    JupyterHost,
    KernelInfo,
    NotebookNotFound,
    StandaloneHost,
    UnknownKernel,
    client_of,
    maybe_await,
)
from .toolset import JupyterOptions, JupyterToolset

__all__ = [
    "Entry",
    "JupyterHost",
    "JupyterOptions",
    "JupyterToolset",
    "KernelInfo",
    "NotebookNotFound",
    "StandaloneHost",
    "UnknownKernel",
    "client_of",
    "maybe_await",
]
