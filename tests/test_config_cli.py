"""`trii-term config validate [FILE]`: the workstation's own verdict on a config file, from the shell."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from trii_term.cli import main
from trii_term.paths import Paths

from .conftest import run_cli

BAD_NUMBER = '[feed]\nsymbols = ["AAPL"]\n\n[risk]\nmax_order_qty = "1e400"\n'  # line 5
GOOD = '[feed]\nsymbols = ["AAPL", "MSFT"]\n\n[risk]\nmax_order_qty = 500\n'


def _validate(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["config", "validate", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_good_file_is_one_line_and_exit_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "good.toml"
    cfg.write_text(GOOD, encoding="utf-8")
    assert _validate(capsys, str(cfg)) == (0, f"{cfg}: valid\n", "")


@pytest.mark.first_start
def test_a_broken_file_is_reported_as_the_workstation_reports_it(
    paths: Paths, capsys: pytest.CaptureFixture[str]
) -> None:
    paths.config_file.write_text(BAD_NUMBER, encoding="utf-8")
    code, out, err = _validate(capsys, str(paths.config_file))
    assert (code, out) == (2, "")
    assert f"{paths.config_file}, line 5: risk.max_order_qty:" in err
    # the workstation refuses the same file with the same words (before any screen opens)
    started = main(["--config", str(paths.config_file), "--data-dir", str(paths.data_dir), "run"])
    assert (started, capsys.readouterr().err) == (2, err)
    assert not paths.data_dir.exists()  # validating created nothing


def test_an_unknown_provider_is_found_as_the_workstation_finds_it(paths: Paths) -> None:
    """Not a TOML or schema problem: the workstation finds it when it sets up its session."""
    paths.config_file.write_text('[ui]\nstale_after = 5\n\n[feed]\nprovider = "nosuch"\n', encoding="utf-8")
    checked = run_cli("config", "validate", str(paths.config_file))
    assert checked.returncode == 2, checked.stdout + checked.stderr
    assert f"{paths.config_file}, line 5: feed.provider:" in checked.stderr
    workstation = run_cli("run", paths=paths)
    assert (workstation.returncode, workstation.stderr) == (2, checked.stderr)


def test_the_default_file_is_the_one_the_workstation_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    chosen = tmp_path / "from-env.toml"
    chosen.write_text(GOOD, encoding="utf-8")
    monkeypatch.setenv("TRII_TERM_CONFIG", str(chosen))
    assert _validate(capsys) == (0, f"{chosen}: valid\n", "")
    flagged = tmp_path / "from-flag.toml"
    flagged.write_text(BAD_NUMBER, encoding="utf-8")
    code = main(["--config", str(flagged), "config", "validate"])
    assert code == 2 and f"{flagged}, line 5:" in capsys.readouterr().err


def test_a_missing_file_is_exit_2_with_what_to_do(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nowhere" / "config.toml"
    code, out, err = _validate(capsys, str(missing))
    assert (code, out) == (2, "")
    assert err == (
        f"trii-term: config error: {missing}: no such file: give the path of a config file "
        "(without one, trii-term runs on its defaults)\n"
    )


def test_a_file_that_cannot_be_read_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "a-folder.toml"
    folder.mkdir()
    code, out, err = _validate(capsys, str(folder))
    assert (code, out) == (2, "")
    assert err.startswith(f"trii-term: config error: {folder}: cannot read the config file (")
    undecodable = tmp_path / "latin1.toml"
    undecodable.write_bytes(b'[ai]\nmodel = "caf\xe9"\n')
    code, out, err = _validate(capsys, str(undecodable))
    assert (code, out) == (2, "") and "cannot read the config file" in err


@pytest.mark.skipif(os.name == "nt" or os.geteuid() == 0, reason="root (or Windows) reads a 0000 file")
def test_a_file_without_read_permission_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    locked = tmp_path / "locked.toml"
    locked.write_text(GOOD, encoding="utf-8")
    locked.chmod(0)
    code, out, err = _validate(capsys, str(locked))
    assert (code, out) == (2, "") and "Permission denied" in err


def test_json_says_ok_file_and_each_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.toml"
    good.write_text(GOOD, encoding="utf-8")
    code, out, err = _validate(capsys, str(good), "--json")
    assert (code, json.loads(out), err) == (0, {"ok": True, "file": str(good), "errors": []}, "")

    bad = tmp_path / "bad.toml"
    bad.write_text(BAD_NUMBER, encoding="utf-8")
    code, out, err = _validate(capsys, str(bad), "--json")
    payload = json.loads(out)
    assert code == 2 and payload["ok"] is False and payload["file"] == str(bad)
    [error] = payload["errors"]
    assert (error["key"], error["line"]) == ("risk.max_order_qty", 5)
    assert error["message"] and error["message"] in err

    code, out, _ = _validate(capsys, str(tmp_path / "missing.toml"), "--json")
    [error] = json.loads(out)["errors"]
    assert code == 2 and (error["key"], error["line"]) == (None, None) and "no such file" in error["message"]


def test_config_needs_an_action(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["config"])
    assert info.value.code == 2 and "validate" in capsys.readouterr().err


def test_the_real_command_and_python_m_agree(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(BAD_NUMBER, encoding="utf-8")
    script = run_cli("config", "validate", str(bad))
    module = subprocess.run(
        [sys.executable, "-m", "trii_term", "config", "validate", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    for result in (script, module):
        assert result.returncode == 2 and result.stdout == ""
        assert result.stderr.startswith(f"trii-term: config error: {bad}, line 5: risk.max_order_qty:")
        assert "Traceback" not in result.stderr
    good = tmp_path / "good.toml"
    good.write_text(GOOD, encoding="utf-8")
    done = run_cli("config", "validate", str(good))
    assert (done.returncode, done.stdout, done.stderr) == (0, f"{good}: valid\n", "")
