"""The SoR kernel's two ways of running: its Python source (what a process uses for its
first small inputs) and the compiled code give the same results on any input; one
compiled version serves every kind of buffer; eau2 reads a small input without numba; a
build of the package ships the kernel compiled."""

import importlib.util
import os
import shutil
import subprocess
import sys
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from eau2 import read_sor
from eau2.sor import kernel
from tests.test_sor_properties import LINES, _encode, same_row

ENTRY_POINTS = [
    kernel.count_lines,
    kernel.first_newline,
    kernel.last_line_end,
    kernel.classify_text,
    kernel.infer_types,
    kernel.parse,
    kernel.gather_strings,
    kernel.gather,
]

BYTES = st.lists(
    st.sampled_from(
        [
            *(b"<", b">", b'"', b" ", b"\t", b"\n", b"\r", b"0", b"1", b"7", b"-", b"+", b".", b"e", b"E"),
            *(b"12345678901234567890", b"9223372036854775808", b"1e308", b"1e-400", b"0.1", b"x"),
            *(b"\xc3\xa9", b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf4\x90\x80\x80"),
        ]
    ),
    max_size=60,
).map(b"".join)


@contextmanager
def run_as(python: bool):
    """Every entry point runs its Python source (`python`), or its compiled code."""
    saved = kernel.INTERPRETED_BYTES, kernel._interpreted, [entry._compiled for entry in ENTRY_POINTS]
    try:
        kernel.INTERPRETED_BYTES, kernel._interpreted = (1 << 62 if python else 0), 0
        for entry in ENTRY_POINTS:
            entry._compiled = None if python else entry.compiled()
        yield
    finally:
        kernel.INTERPRETED_BYTES, kernel._interpreted, compiled = saved
        for entry, function in zip(ENTRY_POINTS, compiled, strict=True):
            entry._compiled = function


def outcome(data, **options):
    """What reading `data` gives: its schema, rows (floats by their bits), dropped lines;
    or the error."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            frame = read_sor(data, **options)
    except Exception as error:
        return type(error), str(error)
    rows = [tuple(row.values()) for row in frame.to_arrow().to_pylist()]
    return str(frame.schema), rows, frame.dropped_rows, frame.dropped_lines


def assert_same_both_ways(data, **options):
    with run_as(python=True):
        python = outcome(data, **options)
    with run_as(python=False):
        compiled = outcome(data, **options)
    if isinstance(python[1], list) and isinstance(compiled[1], list):
        assert python[0] == compiled[0] and python[2:] == compiled[2:]
        assert len(python[1]) == len(compiled[1])
        assert all(same_row(a, b) for a, b in zip(python[1], compiled[1], strict=True))
    else:
        assert python == compiled


@settings(max_examples=120, deadline=None)
@given(LINES)
def test_python_and_compiled_agree_inferring(lines):
    assert_same_both_ways(_encode(lines))


@settings(max_examples=120, deadline=None)
@given(LINES, st.text(alphabet="BIFS", min_size=1, max_size=6))
def test_python_and_compiled_agree_with_a_schema(lines, schema):
    assert_same_both_ways(_encode(lines), schema=schema)


@settings(max_examples=120, deadline=None)
@given(BYTES, st.sampled_from([None, "S", "F", "IFS", "BBBB"]))
def test_python_and_compiled_agree_on_any_bytes(data, schema):
    assert_same_both_ways(data, schema=schema)


def test_python_and_compiled_agree_classifying_text():
    texts = [b"0", b"1", b"-0", b"+1", b"12", b"1.5", b"1e5", b"1e", b".", b"x", b"9" * 25, b"-" + b"0" * 20]
    for text in texts:
        buf = np.frombuffer(text, np.uint8)
        with run_as(python=True):
            python = kernel.classify_text(buf)
        with run_as(python=False):
            compiled = kernel.classify_text(buf)
        assert python == compiled, text


def test_one_compiled_version_serves_every_buffer():
    data = b"<1> <2.5> <x>\n<0> <3> <y>\n"
    compiled = kernel.count_lines.compiled()
    for buf in (
        np.frombuffer(data, np.uint8),
        np.frombuffer(bytearray(data), np.uint8),
        np.array(list(data), np.uint8),
    ):
        assert compiled(buf) == 2
    assert len(compiled.signatures) == 1
    with run_as(python=False):
        assert outcome(data) == outcome(np.frombuffer(bytearray(data), np.uint8)) == outcome(memoryview(data))


def test_small_inputs_run_as_python_within_the_budget_then_compiled(monkeypatch):
    monkeypatch.setattr(kernel, "INTERPRETED_BYTES", 100)
    monkeypatch.setattr(kernel, "_interpreted", 0)
    monkeypatch.setattr(kernel.count_lines, "_compiled", None)
    assert kernel.count_lines(np.frombuffer(b"\n" * 60, np.uint8)) == 60
    assert kernel.count_lines._compiled is None
    assert kernel.count_lines(np.frombuffer(b"\n" * 60, np.uint8)) == 60
    assert kernel.count_lines._compiled is not None


def test_a_compile_that_takes_long_says_so_once(monkeypatch, caplog):
    """Where an install did not ship the kernel compiled for this machine, the first read
    compiles it for several seconds: the process says so rather than seem to hang."""
    import numba

    def slow_njit(signatures, **options):
        def compile(function):
            time.sleep(0.3)
            return function

        return compile

    monkeypatch.setattr(kernel, "_numba", lambda: SimpleNamespace(types=numba.types, njit=slow_njit))
    monkeypatch.setattr(kernel, "COMPILE_NOTICE_SECONDS", 0.05)
    monkeypatch.setattr(kernel, "_said", False)
    for name in ("parse", "infer_types"):
        kernel._EntryPoint(getattr(kernel, name)._python).compiled()
    assert [record.levelname for record in said(caplog)] == ["WARNING"]
    quick = SimpleNamespace(types=numba.types, njit=lambda *signatures, **options: lambda function: function)
    monkeypatch.setattr(kernel, "_numba", lambda: quick)
    monkeypatch.setattr(kernel, "_said", False)
    kernel._EntryPoint(kernel.parse._python).compiled()  # quick, as a load from the cache is
    time.sleep(0.1)
    assert len(said(caplog)) == 1


def said(caplog) -> list:
    return [record for record in caplog.records if "compiling its SoR parser" in record.message]


def test_eau2_reads_a_small_input_without_numba():
    code = (
        "import sys, eau2, eau2.examples\n"
        "assert str(eau2.read_sor(b'<1> <x>\\n<0> <y>\\n').schema) == 'BS'\n"
        "assert 'numba' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_a_build_ships_the_kernel_compiled(tmp_path):
    """setup.py's build step compiles a copy of the kernel beside it, and a new process that
    loads that copy under the installed name takes every entry point from those files: a
    fresh install's first large read compiles nothing. Where numba caches elsewhere
    (NUMBA_CACHE_DIR here; a read-only install is the other case), the shipped files are
    copied there first, and loaded from there."""
    spec = importlib.util.spec_from_file_location("eau2_setup", Path(__file__).parents[1] / "setup.py")
    setup = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(setup)
    copy = tmp_path / "eau2" / "sor" / "kernel.py"
    copy.parent.mkdir(parents=True)
    shutil.copy(kernel.__file__, copy)
    (copy.parent / "__pycache__").mkdir()
    (copy.parent / "__pycache__" / "kernel.parse-1.py311.nbi").write_bytes(b"an earlier build's")

    assert setup.compile_kernel(copy) is None
    shipped = sorted(path.name for path in (copy.parent / "__pycache__").glob("*.nb[ic]"))
    assert sorted({name.split("-")[0] for name in shipped}) == sorted(
        f"kernel.{entry.__name__}" for entry in ENTRY_POINTS
    )

    load = setup.COMPILE_KERNEL.replace("kernel.compile_all()", "")
    count = "print(sum(sum(getattr(kernel, n).compiled().stats.cache_misses.values()) for n in sys.argv[2:]))"
    names = [entry.__name__ for entry in ENTRY_POINTS]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    elsewhere = tmp_path / "numba-cache"
    for env in (clean, {**clean, "NUMBA_CACHE_DIR": str(elsewhere)}):
        done = subprocess.run(
            [sys.executable, "-c", load + count, str(copy), *names], env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "0"
    assert sorted(path.name for path in elsewhere.glob("*/*")) == shipped
