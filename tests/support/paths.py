"""Where the tests find the repository's own files (deploy manifests, benchmarks, docs)."""

from __future__ import annotations

from pathlib import Path

#: The checkout's root: the folder holding pyproject.toml.
REPO = Path(__file__).resolve().parents[2]
