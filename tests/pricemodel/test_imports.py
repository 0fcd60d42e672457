"""Loading the Dagster definitions and the CLI must not pull in torch or the web stack."""

from __future__ import annotations

import subprocess
import sys


def test_asset_module_and_serve_cli_import_nothing_heavy():
    code = (
        "import sys, argparse\n"
        "import sn46_pipelines.defs.training\n"
        "from sn46_pipelines.cli import serve as serve_cli\n"
        "serve_cli.register(argparse.ArgumentParser().add_subparsers())\n"
        "print(sorted(m for m in ('torch', 'fastapi', 'uvicorn', 'onnx') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
