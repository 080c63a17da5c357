"""The example applications of the original eau2: Trivial, Demo, WordCount and Linus."""

from eau2.examples.demo import Demo
from eau2.examples.trivial import Trivial

__all__ = ["Demo", "Trivial"]
