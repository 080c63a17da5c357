"""Applications on in-process nodes: results, output, failures, timeouts."""

import time

import pytest

from eau2 import Application, ApplicationError, Key, run_local
from eau2.examples import Demo, Trivial


def test_trivial(capsys):
    assert run_local(Trivial, nodes=1) == [{"sum": 499_999_500_000.0}]
    assert capsys.readouterr().out == "[node 0] The sum is 499999500000\n"


def test_demo(capsys):
    assert run_local(Demo, nodes=3) == [None, {"sum": 4_999_950_000.0}, {"result": "SUCCESS"}]
    out = capsys.readouterr().out.splitlines()
    assert sorted(out) == ["[node 1] The sum is 4999950000", "[node 2] SUCCESS"]


def test_demo_needs_three_nodes():
    with pytest.raises(ApplicationError, match="node 0: ValueError: Demo needs 3 nodes"):
        run_local(Demo, nodes=2)


class Fails(Application):
    def run(self):
        if self.this_node() == 1:
            raise ZeroDivisionError("boom")
        return self.kv.get_and_wait(Key("never"))  # would wait forever without the cancel


def test_a_failure_cancels_the_others_and_names_its_node():
    started = time.monotonic()
    with pytest.raises(ApplicationError, match=r"node 1: ZeroDivisionError: boom") as caught:
        run_local(Fails, nodes=3)
    assert caught.value.node == 1
    assert isinstance(caught.value.__cause__, ZeroDivisionError)
    assert time.monotonic() - started < 10


class Sleeps(Application):
    def run(self):
        self.kv.get_and_wait(Key("never"))


def test_timeout():
    with pytest.raises(TimeoutError, match=r"within 0\.3 s"):
        run_local(Sleeps, nodes=2, timeout=0.3)


class Prints(Application):
    def __init__(self, word):
        self.word = word

    def run(self):
        print(self.word, self.this_node(), end="")
        print("!")
        return self.num_nodes()


def test_arguments_output_and_results(capsys):
    assert run_local(Prints, "hi", nodes=2) == [2, 2]
    assert sorted(capsys.readouterr().out.splitlines()) == ["[node 0] hi 0!", "[node 1] hi 1!"]


def test_only_applications_run():
    with pytest.raises(ApplicationError, match=r"subclass of eau2\.Application"):
        run_local(dict, nodes=1)
