"""Tab completion of manage.py in bash (scripts/completion.bash), as a user gets it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def complete(line: str, tmp_path: Path) -> list[str]:
    """Complete the last word of ``line`` as bash would on Tab; return the suggestions."""
    words = line.split(" ")
    script = (
        "source scripts/completion.bash\n"
        f"COMP_WORDS=({' '.join(repr(w) for w in words)})\n"
        f"COMP_CWORD={len(words) - 1}\n"
        'spec=$(complete -p "${COMP_WORDS[0]}")\n'
        "function=${spec#*-F }; function=${function%% *}\n"
        '"$function" "${COMP_WORDS[0]}"\n'
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    env = {"PATH": f"{ROOT / '.venv' / 'bin'}:/usr/bin:/bin", "CONTINUST_VAR_DIR": str(tmp_path)}
    done = subprocess.run(
        ["bash", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return [w for w in done.stdout.split() if w]


@pytest.mark.parametrize("runner", ["./manage.py", ".venv/bin/python manage.py"])
def test_command_names_complete(runner, tmp_path):
    assert complete(f"{runner} ver", tmp_path) == ["verify"]
    assert {"replay", "retention"} <= set(complete(f"{runner} re", tmp_path))


def test_a_commands_options_complete(tmp_path):
    options = complete("./manage.py verify --", tmp_path)
    assert {"--project=", "--stream=", "--digest=", "--json"} <= set(options)


def test_other_python_scripts_are_left_alone(tmp_path):
    assert complete(".venv/bin/python other.py ver", tmp_path) == []
