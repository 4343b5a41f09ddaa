"""`gantry -t` against real config files."""
import subprocess

from conftest import ROOT


def test_example_config_passes(gantry):
    conf = ROOT / "deploy/example/gantry.conf"
    r = subprocess.run([gantry, "-t", "-c", conf], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"the configuration file {conf} syntax is ok" in r.stdout + r.stderr


def test_unexpected_brace_reports_file_and_line(gantry, tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text("events {\n}\n}\n")
    r = subprocess.run([gantry, "-t", "-c", conf], capture_output=True, text=True)
    assert r.returncode == 1
    assert f'unexpected "}}" in {conf}:3' in r.stdout + r.stderr
