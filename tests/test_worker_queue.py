"""One job at a time, first come first served across clients: two clients submit ten
jobs each at the same moment; all twenty finish, in the order the worker took them,
none lost or duplicated."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from acestep_core.client import WorkerClient
from acestep_core.jobs import DONE
from acestep_core.request import GenerationRequest

pytestmark = pytest.mark.slow


def test_two_clients_submitting_ten_jobs_each_at_once(worker: WorkerClient):
    clients = [WorkerClient(worker.url, worker.token, timeout=10) for _ in range(2)]
    start = threading.Barrier(len(clients))
    submitted: dict[int, list[str]] = {k: [] for k in range(len(clients))}
    errors: list[BaseException] = []

    def submit_ten(k: int) -> None:
        try:
            start.wait()
            for n in range(10):
                request = GenerationRequest(prompt=f"client {k} cue {n}", duration=2.0, bpm=120.0, seed=100 * k + n)
                submitted[k].append(clients[k].submit(request).id)
        except BaseException as exc:  # surfaced below; a thread's exception is otherwise lost
            errors.append(exc)

    threads = [threading.Thread(target=submit_ten, args=(k,)) for k in range(len(clients))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    all_ids = submitted[0] + submitted[1]
    assert len(set(all_ids)) == 20

    finished = {job_id: worker.wait(job_id, timeout=300) for job_id in all_ids}
    assert all(job.status == DONE for job in finished.values()), [j.error for j in finished.values()]

    # The worker's history, oldest first, is the order it accepted the jobs in ...
    accepted = [job.id for job in reversed(worker.jobs(limit=20))]
    assert sorted(accepted) == sorted(all_ids)
    # ... each client's jobs keep their own order within it ...
    for k in submitted:
        assert [job_id for job_id in accepted if job_id in submitted[k]] == submitted[k]
    # ... and they ran in exactly that order, one at a time.
    finish_times = [finished[job_id].finished_at for job_id in accepted]
    assert finish_times == sorted(finish_times)
    # Every job wrote its own file, once.
    paths = [finished[job_id].outputs[0].path for job_id in accepted]
    assert len(set(paths)) == 20 and all(Path(p).is_file() for p in paths)
    seeds = sorted(finished[job_id].outputs[0].seed for job_id in accepted)
    assert seeds == sorted(100 * k + n for k in range(2) for n in range(10))
