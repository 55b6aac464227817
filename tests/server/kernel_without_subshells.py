"""An IPython kernel that does not advertise kernel subshells, as kernels before ipykernel 7
(and most other kernels) do not.

Its ``kernel_info_reply`` leaves "kernel subshells" out of ``supported_features``; a client
must then not address subshells, so this kernel exercises the path of a kernel without them
while staying a complete, working ipykernel. A kernel spec runs this file in the tests.
"""

from typing import Any

from ipykernel.ipkernel import IPythonKernel
from ipykernel.kernelapp import IPKernelApp


class KernelWithoutSubshells(IPythonKernel):
    @property
    def kernel_info(self) -> dict[str, Any]:
        info = dict(super().kernel_info)
        info["supported_features"] = [
            feature for feature in info["supported_features"] if feature != "kernel subshells"
        ]
        return info


if __name__ == "__main__":
    IPKernelApp.launch_instance(kernel_class=KernelWithoutSubshells)
