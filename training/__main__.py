"""`python -m training`: the language server's training child, not a command for users.

It takes the request as arguments and speaks only the event stream (training/events.py) on
stdout; a request it cannot run ends with one `smallcoder: error: …` line on stderr.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from model.errors import ModelError
from training.events import (
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    TrainingRequest,
    TrainingRequestError,
    add_request_arguments,
    leave_the_libraries_to_the_os,
    print_event,
    run_training,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__)
    parser.add_argument("--repo", action="append", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--model")
    parser.add_argument("--max-minutes", type=float)
    parser.add_argument("--max-steps", type=int)
    add_request_arguments(parser)
    args = parser.parse_args(argv)
    request = TrainingRequest(tuple(args.repo), args.out, args.model, args.max_minutes,
                              args.max_steps, other_authors=tuple(args.other_author),
                              threads=args.threads, accepted_work=args.accepted_work,
                              start=args.start)
    try:
        summary, status = run_training(request, progress_json=True)
    except (TrainingRequestError, ValueError, ModelError) as error:
        print(f"smallcoder: error: {error}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    finally:
        leave_the_libraries_to_the_os()
    print_event("result", **summary)
    return status


if __name__ == "__main__":
    sys.exit(main())
