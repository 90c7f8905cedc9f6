from jobs.scheduler import run_all


def test_jobs_run_in_submission_order():
    assert run_all(["build", "test", "deploy"]) == ["build", "test", "deploy"]


def test_no_jobs():
    assert run_all([]) == []
