from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from reporting import embedded_db


@pytest.fixture
def embedded():
    if not embedded_db.server_in_use():
        pytest.skip("DATABASE_URL points at another server")
    return embedded_db.server()


def test_users_that_died_without_a_word_are_forgotten(embedded):
    handles = embedded_db.data_dir() / ".handle_pids.json"
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead_pid = int(dead.stdout)
    before = json.loads(handles.read_text())
    handles.write_text(json.dumps([*before, dead_pid]))
    embedded_db._forget_dead_handles(embedded_db.data_dir())
    after = json.loads(handles.read_text())
    assert dead_pid not in after
    assert os.getpid() in after, "this process still uses the server"


def test_non_superusers_must_give_a_password(embedded):
    hba = (embedded_db.data_dir() / "pg_hba.conf").read_text()
    assert hba == embedded_db.HBA
    assert "local   all             all                                     scram-sha-256" in hba
