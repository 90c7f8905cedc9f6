from jobs.queue import Queue


def run_all(jobs: list[str]) -> list[str]:
    """The jobs in the order they ran: the order they were submitted."""
    queue = Queue()
    for job in jobs:
        queue.put(job)
    done = []
    while len(queue):
        done.append(queue.take())
    return done
