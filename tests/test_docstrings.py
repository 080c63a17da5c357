"""Docstring examples render as code on the API page: mkdocstrings (Google style) shows
`>>>` lines as code only inside an ``Examples:`` section, and as run-together quotes
anywhere else."""

import ast
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_every_docstring_example_is_in_an_examples_section():
    misplaced = []
    for path in sorted([*ROOT.glob("eau2/**/*.py"), *ROOT.glob("eau2_dask/**/*.py")]):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node) or ""
                if ">>>" in doc and "Examples:" not in doc.split(">>>")[0]:
                    misplaced.append(f"{path.relative_to(ROOT)}: {getattr(node, 'name', 'module')}")
    assert not misplaced, misplaced
