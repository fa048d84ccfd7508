"""The README's YAML front matter is a valid Gradio Space configuration that names files that exist."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _front_matter() -> tuple[str, dict]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    m = re.match(r"^---\n(.*?)\n---\n", text, re.S)
    assert m, "README.md must start with a --- YAML block (the Space configuration)"
    return m.group(1), yaml.safe_load(m.group(1))


def test_space_front_matter_parses_with_gradio_settings():
    raw, meta = _front_matter()
    assert meta["sdk"] == "gradio"
    assert meta["sdk_version"] == "6.31.0"
    assert meta["app_file"] == "app.py"
    # Unquoted, 3.10 would parse as the float 3.1; the value must be a quoted string.
    assert meta["python_version"] == "3.11" and re.search(r"^python_version: \"3\.11\"$", raw, re.M)
    assert "hardware" not in meta  # not a Space key; hardware is chosen in the settings
    assert len(meta.get("short_description", "")) <= 60
    assert isinstance(meta["title"], str) and meta["title"]


def test_space_names_files_that_exist():
    _, meta = _front_matter()
    assert (ROOT / meta["app_file"]).is_file(), f"{meta['app_file']} named by README.md does not exist"
    assert (ROOT / "requirements.txt").is_file()  # what the Space installs
