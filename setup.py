"""A build step beside pyproject.toml: the package ships its SoR kernel compiled.

After copying the package, ``build_py`` compiles ``eau2/sor/kernel.py`` with numba into
its ``__pycache__``, and the wheel carries those files (eau2 copies them to where numba
caches, if that is elsewhere: see ``kernel._place_shipped_code``). numba loads them
instead of compiling when its version, the Python version, the CPU and the kernel's source
all match the build's (as they do for ``pip install .`` on the machine that runs it);
otherwise the kernel compiles on first use, as without them. A build that cannot compile (no numba in
the build environment) warns and ships the package without them. An editable install
compiles on first use, into the source tree.
"""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

# Loads the kernel under its installed name without importing eau2 (whose other
# dependencies a build environment lacks), so numba records it as the installed module.
COMPILE_KERNEL = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("eau2.sor.kernel", sys.argv[1])
kernel = sys.modules[spec.name] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(kernel)
kernel._said = True  # compiling is what a build is for: no notice
kernel.compile_all()
"""

COMPILE_SECONDS = 600  # about 10 s on a 2-core machine; a build that takes this long is stuck


def compile_kernel(kernel: Path) -> str | None:
    """Compile the kernel at `kernel` into its ``__pycache__``, replacing what an earlier
    build left there; None if done, else why not."""
    cache = kernel.parent / "__pycache__"
    # Run where no numba setting applies (NUMBA_* variables, a .numba_config.yaml in the
    # working folder), so that the cache is written beside the kernel, for any CPU of this kind.
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    try:
        for stale in cache.glob("*.nb[ic]"):
            stale.unlink()
        with tempfile.TemporaryDirectory() as elsewhere:
            done = subprocess.run(
                [sys.executable, "-c", COMPILE_KERNEL, str(kernel.resolve())],
                cwd=elsewhere,
                env=env,
                capture_output=True,
                text=True,
                timeout=COMPILE_SECONDS,
            )
    except (OSError, subprocess.TimeoutExpired) as error:
        return str(error)
    if done.returncode != 0:
        return (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
    if not any(cache.glob("kernel.parse-*.nbi")):
        return f"numba wrote no cache in {cache}"
    return None


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
