"""The example applications of the original eau2: Trivial, Demo, WordCount and Linus."""

from eau2.examples.demo import Demo
from eau2.examples.linus import Linus
from eau2.examples.trivial import Trivial
from eau2.examples.wordcount import WordCount

__all__ = ["Demo", "Linus", "Trivial", "WordCount"]
