"""Shared fixtures: locate the built `gantry` binary and run it with real configs."""
import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def gantry_binary() -> pathlib.Path:
    env = os.environ.get("GANTRY_BIN")
    if env:
        return pathlib.Path(env)
    out = subprocess.run(["swift", "build", "--show-bin-path"], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout.strip()
    return pathlib.Path(out) / "gantry"


@pytest.fixture(scope="session")
def gantry() -> pathlib.Path:
    path = gantry_binary()
    assert path.exists(), f"{path} missing: run `swift build` first"
    return path
