"""`smallcoder train` from start to finish: mine, build examples, train, export, evaluate.

Each stage is a function of its own module; this one only runs them in order and says what
happened. Checkpoints live in ADAPTER.work/ beside the output, so a second run resumes.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from model import registry
from training.accepted import ACCEPTED_EXAMPLE_WEIGHT, accepted_examples, load_accepted
from training.evaluate import EVAL_EXAMPLES, GUARD_SAMPLE, evaluate_adapter
from training.examples import Example, GgufTokenizer, build_examples
from training.export import Provenance, export_adapter
from training.machine import ThreadCounts
from training.mine import Dataset, SourceFile, mine
from training.preflight import START_MODES
from training.report import write_report
from training.style import AuthorCode
from training.train import (
    CHECKPOINT_DIR,
    STATE_FILE,
    StepProgress,
    TrainConfig,
    TrainResult,
    train,
)

EVAL_SEED = 1
# What training writes derives from the user's code: readable by the user alone.
PRIVATE_UMASK = 0o077
PRIVATE_FILE_MODE = 0o600
PRIVATE_FOLDER_MODE = 0o700


@dataclass(frozen=True)
class PipelineResult:
    adapter: Path
    report: Path | None
    training: TrainResult
    guard_passed: bool | None


def base_sha256(path: Path) -> str:
    """The registry's pinned hash for a known model, else the file's own."""
    for spec in registry.REGISTRY.values():
        if registry.model_path(spec) == path:
            return spec.sha256
    return registry.sha256_of(path)


def writes_private_files(function: Callable[..., PipelineResult]) -> Callable[..., PipelineResult]:
    """Run `function` with umask 077, so that the checkpoints, the adapter and its report are
    created 0600 (folders 0700); files of an earlier run are made so too."""
    @functools.wraps(function)
    def run_privately(*args: object, **kwargs: object) -> PipelineResult:
        previous = os.umask(PRIVATE_UMASK)
        try:
            result = function(*args, **kwargs)
        finally:
            os.umask(previous)
        _make_private(result.adapter, result.adapter.with_name(result.adapter.name + ".work"),
                      result.report)
        return result
    return run_privately


def _make_private(*paths: Path | None) -> None:
    for path in paths:
        if path is None or not path.exists():
            continue
        if path.is_dir():
            for folder, _, files in os.walk(path):
                os.chmod(folder, PRIVATE_FOLDER_MODE)
                for name in files:
                    os.chmod(os.path.join(folder, name), PRIVATE_FILE_MODE)
        else:
            os.chmod(path, PRIVATE_FILE_MODE)


@writes_private_files
def train_personal_adapter(repos: list[Path], out: Path, *, model: str | None = None,
                           max_minutes: float | None = None,
                           config: TrainConfig | None = None, evaluate: bool = True,
                           eval_examples: int = EVAL_EXAMPLES, guard_sample: int = GUARD_SAMPLE,
                           other_authors: list[Path] = (), threads: int | None = None,
                           accepted_work: bool = False, start: str = "auto",
                           say: Callable[[str], None] | None = None,
                           on_step: Callable[[StepProgress], None] | None = None
                           ) -> PipelineResult:
    """Everything `smallcoder train` does; returns the adapter and its report.

    `other_authors`: repositories of other authors, for the cross-author control in the report.
    `threads`: for training and evaluation alike (None: chosen from the machine).
    `accepted_work`: also learn from the changes the user accepted (training/accepted.py).
    `start`: "auto" continues from OUT.work/'s checkpoint when there is one, "continue" insists
    on one, "fresh" deletes it first.
    `say` gets what happens stage by stage; `on_step`, when given, each training step's figures
    (else they go to `say` as a progress bar).
    """
    say = say or (lambda line: print(line, file=sys.stderr, flush=True))
    thread_counts = ThreadCounts.choose(threads)
    config = config or TrainConfig()
    config = replace(config, threads=config.threads or thread_counts.train,
                     max_minutes=config.max_minutes if max_minutes is None else max_minutes)
    base = registry.resolve_model(model)
    say(f"mining {', '.join(str(repo) for repo in repos)}")
    dataset = mine(repos)
    say(dataset.stats.summary())
    examples, held_out, validation = _examples_of(dataset, base, config.seed)
    examples += (from_accepted := _accepted_work_examples(dataset, base, say)
                 if accepted_work else [])
    data_sha256 = training_data_sha256(dataset, from_accepted)
    say(f"{len(examples)} training examples, {len(held_out)} held-out examples")
    work = out.with_name(out.name + ".work")
    prepare_work_folder(work, start, say)
    result = train(base, examples, work, config, validation=validation, on_progress=say,
                   on_step=on_step)
    _say_how_training_went(result, say)
    provenance = Provenance(base_model=base.name.removesuffix(".gguf"),
                            base_sha256=base_sha256(base), dataset_sha256=data_sha256,
                            steps=result.adapter_step, scores={})
    export_adapter(result.adapter_dir, out, provenance)
    say(f"adapter written to {out}")
    if not evaluate or result.stopped_by == "interrupt" or not held_out:
        return PipelineResult(out, None, result, None)

    say("evaluating base and adapter on held-out files and the guard set")
    corpus = "\n".join(source.text for source in dataset.train if source.language == "python")
    others = [author_code(mine([repo]), repo.name) for repo in other_authors]
    report = evaluate_adapter(base, out, held_out, corpus,
                              unseen=dataset.held_out + dataset.validation,
                              examples=eval_examples, guard_sample=guard_sample,
                              author=author_code(dataset, "you"), others=others,
                              threads=thread_counts.evaluate)
    export_adapter(result.adapter_dir, out, replace(
        provenance, scores=report.scores_for_metadata(), guard_passed=report.guard_passed))
    markdown = write_report(report, out, _report_facts(provenance, dataset, result,
                                                       from_accepted, accepted_work))
    say(f"report written to {markdown}")
    return PipelineResult(out, markdown, result, report.guard_passed)


def _report_facts(provenance: Provenance, dataset: Dataset, result: TrainResult,
                  from_accepted: list[Example], accepted_work: bool) -> dict[str, str]:
    """What the report says the adapter was trained from and how."""
    return {
        "base model": provenance.base_model, "base sha256": provenance.base_sha256,
        "dataset sha256": provenance.dataset_sha256, "training steps": str(result.steps) + (
            "" if result.best_step is None else f" (adapter of step {result.best_step}, lowest "
                                                f"validation loss {result.validation_loss:.3f})"),
        "training tokens/s": f"{result.tokens_per_second:.0f}",
        "files": f"{dataset.stats.train_files} for training, {dataset.stats.held_out_files} "
                 f"held out ({dataset.stats.split_by})",
        "examples from your accepted work": _accepted_fact(from_accepted, accepted_work)}


def author_code(dataset: Dataset, name: str) -> AuthorCode:
    """An author's Python files, as the style measures take them: those trained on, and those
    held out or watched for overfitting."""
    def python(sources: tuple[SourceFile, ...]) -> tuple[str, ...]:
        return tuple(source.text for source in sources if source.language == "python")

    return AuthorCode(name, python(dataset.train), python(dataset.held_out + dataset.validation))


def prepare_work_folder(work: Path, start: str, say: Callable[[str], None]) -> None:
    """Make OUT.work/ what `start` asks for: emptied for "fresh"; for "continue", checked to
    hold a checkpoint to continue from; left as it is for "auto"."""
    checkpoint = work / CHECKPOINT_DIR / STATE_FILE
    if start == "fresh" and work.exists():
        shutil.rmtree(work)
        say(f"starting fresh: the checkpoints in {work} are deleted")
    elif start == "continue" and not checkpoint.is_file():
        raise ValueError(f"there is no checkpoint in {work} to continue from: train without "
                         f"--continue (or with --fresh)")
    elif start not in START_MODES:
        raise ValueError(f"start must be one of {', '.join(START_MODES)}, not {start!r}")


def _accepted_work_examples(dataset: Dataset, base: Path,
                            say: Callable[[str], None]) -> list[Example]:
    """The examples of the user's accepted fixes and refactors, weighted; said how many."""
    changes, skipped = load_accepted()
    evaluated = [(source.repo, source.path) for source in dataset.held_out + dataset.validation]
    examples, used = accepted_examples(changes, GgufTokenizer(base), held_out=evaluated)
    say(f"accepted work: {used} of {len(changes)} kept changes give {len(examples)} examples "
        f"(each weighs {ACCEPTED_EXAMPLE_WEIGHT}); " + (f"{skipped} skipped (unreadable or "
                                                        f"with a secret)" if skipped else
                                                        "none skipped"))
    return examples


def training_data_sha256(dataset: Dataset, from_accepted: list[Example]) -> str:
    """The mined files' hash, and with accepted work, the hash of that and of its examples."""
    if not from_accepted:
        return dataset.sha256
    digest = hashlib.sha256(dataset.sha256.encode())
    for example in from_accepted:
        digest.update(repr(example.input_ids).encode())
    return digest.hexdigest()


def _accepted_fact(examples: list[Example], asked: bool) -> str:
    if not asked:
        return "not used (opt-in: smallcoder.training.learnFromAccepted, --accepted-work)"
    kinds = Counter(example.kind for example in examples)
    return (f"{len(examples)} ({kinds['accepted fix']} of fixes from Solve with Agent, "
            f"{kinds['accepted refactor']} of refactorings, each change weighing "
            f"{ACCEPTED_EXAMPLE_WEIGHT})")


def _examples_of(dataset: Dataset, base: Path, seed: int
                 ) -> tuple[list[Example], list[Example], list[Example]]:
    """The training examples (cut with `seed`), then the held-out and validation ones (cut with
    EVAL_SEED, whatever the training seed)."""
    tokenizer = GgufTokenizer(base)
    examples = build_examples(dataset.train, tokenizer, seed=seed)
    held_out = build_examples(dataset.held_out, tokenizer, seed=EVAL_SEED)
    validation = build_examples(dataset.validation, tokenizer, seed=EVAL_SEED)
    if not examples:
        raise ValueError("the repositories gave no training examples: point --repo at "
                         "folders with Python, JavaScript or TypeScript sources")
    return examples, held_out, validation


def _say_how_training_went(result: TrainResult, say: Callable[[str], None]) -> None:
    say(f"trained {result.steps} steps, {result.tokens:,} tokens in {result.seconds / 60:.1f} "
        f"min ({result.tokens_per_second:.0f} tokens/s), stopped by {result.stopped_by}")
    if result.best_step == 0:
        say("training never lowered the loss on the files it did not train on: the adapter "
            "written changes nothing (more code, or a lower learning rate, may help)")
    elif result.best_step is not None:
        say(f"keeping the adapter of step {result.best_step}, where the loss on files not "
            f"trained on was lowest ({result.validation_loss:.3f})")
