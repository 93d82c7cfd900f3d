"""Per-user tokens on the single worker (shared with the cluster; no Ray needed): the
tokens file keeps only hashes, a user's jobs record their name, a revoked token is
refused from the next request on, and bad names and unknown users are one sentence."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from worker_fixtures import REPO_ROOT

from acestep_core.client import WorkerClient
from acestep_core.errors import WorkerAuthFailed
from acestep_core.jobs import DONE
from acestep_core.request import GenerationRequest
from acestep_core.worker.tokens import TokenBook, TokenProblem

SHORT = {"prompt": "tense boss battle, synthwave", "duration": 2.0, "bpm": 120.0}


def run_tokens(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "acestep_core", "tokens", *args], cwd=REPO_ROOT,
                          env=dict(os.environ, ACESTEP_DCC_HOME=str(home)), capture_output=True, text=True, timeout=60)


def test_the_single_worker_takes_user_tokens_and_records_who_asked(worker: WorkerClient, worker_process):
    bob = run_tokens(worker_process.home, "add", "bob")
    carol = run_tokens(worker_process.home, "add", "carol")
    assert bob.returncode == 0 and carol.returncode == 0, bob.stderr + carol.stderr
    as_bob = WorkerClient(worker.url, bob.stdout.strip())
    as_carol = WorkerClient(worker.url, carol.stdout.strip())
    jobs = [client.submit(GenerationRequest(**SHORT)) for client in (as_bob, as_carol, worker)]
    assert [job.requested_by for job in jobs] == ["bob", "carol", None]
    assert all(worker.wait(job.id, timeout=60).status == DONE for job in jobs)
    history = {job.id: job.requested_by for job in worker.jobs(limit=3)}
    assert history == {jobs[0].id: "bob", jobs[1].id: "carol", jobs[2].id: None}

    assert run_tokens(worker_process.home, "revoke", "bob").returncode == 0
    with pytest.raises(WorkerAuthFailed):
        as_bob.health()
    assert as_carol.health()["backend"] == "sketch"  # the others' tokens still work


def test_the_tokens_file_keeps_hashes_only_readable_by_the_user(tmp_path):
    book = TokenBook(tmp_path / "tokens.json")
    token = book.add("dave")
    text = (tmp_path / "tokens.json").read_text()
    assert token not in text and json.loads(text)["tokens"][0]["name"] == "dave"
    assert stat.S_IMODE((tmp_path / "tokens.json").stat().st_mode) == 0o600
    assert book.user_for(token) == "dave" and book.user_for(token + "x") is None
    renewed = book.add("dave")  # a new token for the same user replaces the old one
    assert book.user_for(renewed) == "dave" and book.user_for(token) is None


@pytest.mark.parametrize("name", ["", "has space", "../x", "a" * 65, "-dash-first"])
def test_a_bad_user_name_is_one_sentence(tmp_path, name):
    with pytest.raises(TokenProblem, match="not usable"):
        TokenBook(tmp_path / "tokens.json").add(name)


def test_the_tokens_command_says_what_is_wrong(tmp_path):
    unknown = run_tokens(tmp_path, "revoke", "nobody")
    assert unknown.returncode == 2 and "no token for 'nobody'" in unknown.stderr and "Traceback" not in unknown.stderr
    (tmp_path / "state").mkdir(parents=True, exist_ok=True)
    (tmp_path / "state" / "tokens.json").write_text("not json")
    broken = run_tokens(tmp_path, "list")
    assert broken.returncode == 2 and "is not a tokens file" in broken.stderr
