"""A build step beside pyproject.toml: the package ships its SoR kernel compiled.

After copying the package, ``build_py`` compiles ``eau2/sor/kernel.py`` with numba into
its ``__pycache__``, and the wheel carries those files. numba loads them instead of
compiling when its version, the Python version, the CPU and the kernel's source all match
the build's (as they do for ``pip install .`` on the machine that runs it); otherwise the
kernel compiles on first use, as without them. A build that cannot compile (no numba in
the build environment) warns and ships the package without them. An editable install
compiles on first use, into the source tree.
"""

import os
import subprocess
import sys
from pathlib import Path

# Loads the kernel under its installed name without importing eau2 (whose other
# dependencies a build environment lacks), so numba records it as the installed module.
COMPILE_KERNEL = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("eau2.sor.kernel", sys.argv[1])
kernel = sys.modules[spec.name] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(kernel)
kernel.compile_all()
"""


def compile_kernel(kernel: Path) -> str | None:
    """Compile the kernel at `kernel` into its ``__pycache__``, replacing what an earlier
    build left there; None if done, else why not."""
    for stale in kernel.parent.glob("__pycache__/*.nb[ic]"):
        stale.unlink()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}  # e.g. a CACHE_DIR elsewhere
    done = subprocess.run(
        [sys.executable, "-c", COMPILE_KERNEL, str(kernel)], env=env, capture_output=True, text=True
    )
    if done.returncode == 0:
        return None
    return (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]


def main() -> None:
    from setuptools import setup
    from setuptools.command.build_py import build_py

    class BuildWithCompiledKernel(build_py):
        """``build_py``, then the kernel compiled in the build's copy of the package."""

        def run(self) -> None:
            super().run()
            if self.editable_mode:
                return
            self.announce("compiling the SoR kernel (numba)", level=2)
            failed = compile_kernel(Path(self.build_lib, "eau2", "sor", "kernel.py"))
            if failed:
                self.warn(f"the SoR kernel was not compiled ({failed}): it will compile on first use")

    setup(cmdclass={"build_py": BuildWithCompiledKernel})


if __name__ == "__main__":  # as setuptools runs it; a test imports it for `compile_kernel`
    main()
