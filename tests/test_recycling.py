import shutil
from types import SimpleNamespace

import pytest

from slipway.serving import recycling


@pytest.fixture
def serving(tmp_path, monkeypatch):
    """A server's marker directory, as gunicorn's ``on_starting`` leaves it."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    recycling.reset()
    return tmp_path / recycling.SERVING_DIR


def markers(directory):
    return sorted(int(path.name) for path in directory.iterdir() if path.name.isdigit())


def test_a_worker_goes_only_while_every_worker_serves_and_the_next_waits_for_its_replacement(serving):
    recycling.mark_serving(101)
    assert not recycling.leave_if_all_serving(101, workers=2)  # the other is still loading
    recycling.mark_serving(102)
    assert recycling.leave_if_all_serving(101, workers=2)
    assert markers(serving) == [102]  # 101 counts as gone from the decision on
    assert not recycling.leave_if_all_serving(102, workers=2)
    recycling.forget(101)  # reaped by the master
    recycling.mark_serving(103)  # its replacement loaded the app
    assert recycling.leave_if_all_serving(102, workers=2)
    assert markers(serving) == [103]


def test_a_single_worker_goes_at_its_limit(serving):
    recycling.mark_serving(101)
    assert recycling.leave_if_all_serving(101, workers=1)


def test_a_new_run_starts_with_no_markers(serving):
    recycling.mark_serving(101)  # left by a master that was killed
    recycling.reset()
    assert markers(serving) == []


def test_without_a_multiprocess_directory_nothing_is_coordinated(monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    recycling.mark_serving(101)
    recycling.forget(101)
    assert recycling.leave_if_all_serving(101, workers=2)


class Worker(recycling.OneRecycleAtATime):
    """What of a gunicorn worker the mixin reads: gunicorn sets ``max_requests`` in ``__init__``
    and asks ``nr >= max_requests`` after each request."""

    def __init__(self, limit, workers=2, timeout=30):
        self.cfg = SimpleNamespace(workers=workers, timeout=timeout)
        self.nr = 0
        self.max_requests = limit

    def handle_request(self) -> bool:
        """True when gunicorn would now stop the worker."""
        self.nr += 1
        return self.nr >= self.max_requests


def test_a_worker_past_its_limit_serves_on_until_the_others_serve(serving, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(recycling.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(recycling.os, "getpid", lambda: 101)
    worker = Worker(limit=3)
    recycling.mark_serving(101)
    assert [worker.handle_request() for _ in range(5)] == [False] * 5  # the other worker is loading
    recycling.mark_serving(102)
    assert worker.handle_request() and worker.nr == 6
    assert markers(serving) == [102]


def test_a_worker_waits_at_most_gunicorns_timeout(serving, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(recycling.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(recycling.os, "getpid", lambda: 101)
    worker = Worker(limit=2, timeout=30)
    recycling.mark_serving(101)
    assert [worker.handle_request() for _ in range(3)] == [False] * 3  # waiting since the second
    clock[0] += 29.9
    assert not worker.handle_request()
    clock[0] += 0.1
    assert worker.handle_request()
    assert markers(serving) == []  # the others no longer count it


def test_without_a_limit_a_worker_never_goes(serving):
    worker = Worker(limit=2**63 - 1)  # gunicorn's value for max_requests 0
    recycling.mark_serving(101)
    assert not any(worker.handle_request() for _ in range(1000))


def test_a_directory_that_cannot_be_used_leaves_gunicorns_own_behaviour_and_says_why(serving, monkeypatch, caplog):
    recycling.mark_serving(101)

    def broken(_):
        raise OSError("Input/output error")

    monkeypatch.setattr(recycling.os, "listdir", broken)
    assert recycling.leave_if_all_serving(101, workers=2)  # does not fail the request it follows
    assert "worker 101 goes at its limit without asking whether the others serve (Input/output error)" in caplog.text
    shutil.rmtree(serving)
    serving.write_text("not a directory")
    recycling.mark_serving(102)  # does not fail the worker's boot
    assert "worker 102 could not say it serves" in caplog.text
    recycling.forget(102)  # nor the master's reaping
    assert "worker 102 still counts as serving" in caplog.text
