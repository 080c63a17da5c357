"""The example applications of the original eau2: Trivial, Demo, WordCount and Linus."""

from eau2.examples.demo import Demo
from eau2.examples.trivial import Trivial

APPLICATIONS = {"trivial": Trivial, "demo": Demo}
"""The examples `eau2 run` knows, by name."""

__all__ = ["APPLICATIONS", "Demo", "Trivial"]
