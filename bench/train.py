"""Does a personal adapter learn *its author's* style? Two contrasting code bases from PyPI.

click (pallets: black, double quotes, type hints, Sphinx `:param:` docstrings) and pyasn1 (one
author: camelCase, single quotes, no hints, numpy-style docstrings) are downloaded as wheels
(pure Python: the wheel is the source). Neither writes like the base model does in an empty
file (no hints, Google-style "Args:" sections), so a style gain can show on both; toolz, used
before, is written much as the base writes, and left no room. A 0.5B adapter is trained on
each for a fixed wall-time budget, then evaluated against the base on held-out files of the
same author and of the other one (the cross-author check), plus the HumanEval guard set on its
own author. Prints one table and writes bench/results/train-MODEL.json, with the machine's raw
llama.cpp speed measured at the start of the same run.

Run: .venv/bin/python bench/train.py [--model NAME] [--minutes 30] [--eval-examples 24] [--guard 40]
     .venv/bin/python bench/train.py --speed-only 8   (training tokens/s alone, a few minutes)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import zipfile
from dataclasses import asdict, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.session import raw_speed
from model import registry
from model.home import smallcoder_home
from training.evaluate import (
    STYLE_FUNCTIONS,
    evaluate_adapter,
    guard_tasks,
    score_arm,
    style_features,
    style_prompts,
)
from training.examples import GgufTokenizer, build_examples
from training.export import Provenance, export_adapter, verify_export
from training.mine import mine
from training.pipeline import author_code, base_sha256
from training.report import write_report
from training.train import TrainConfig, train

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
CORPORA = {"click": "click==8.5.1", "pyasn1": "pyasn1==0.6.5"}
MODEL = "qwen2.5-coder-0.5b-instruct-q4_k_m"
# Short budgets need a brisker learning rate than an overnight run; sequences stay ≥ 512.
BENCH_CONFIG = TrainConfig(rank=16, alpha=32.0, learning_rate=5e-4, warmup_steps=2,
                           grad_accum=2, checkpoint_every=5, max_steps=400)
SEQUENCE_TOKENS = 512


def corpus_dir(name: str, requirement: str) -> Path:
    """The package's source, from its wheel, unpacked once under $SMALLCODER_HOME."""
    folder = smallcoder_home() / "bench-corpora" / name
    if folder.is_dir():
        return folder
    wheels = folder.with_name(name + ".wheels")
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                    "--quiet", "--dest", str(wheels), requirement], check=True)
    (wheel,) = wheels.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        members = [member for member in archive.namelist()
                   if member.endswith(".py") and ".dist-info/" not in member]
        archive.extractall(folder, members)
    return folder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=MODEL, help="the base model (default: %(default)s)")
    parser.add_argument("--minutes", type=float, default=30.0, help="training budget per adapter")
    parser.add_argument("--eval-examples", type=int, default=24)
    parser.add_argument("--guard", type=int, default=40, help="HumanEval guard tasks")
    parser.add_argument("--style-functions", type=int, default=STYLE_FUNCTIONS,
                        help="functions begun in an empty file for the style measures")
    parser.add_argument("--own-only", action="store_true",
                        help="evaluate each adapter on its own author's files only (the "
                             "cross-author control needs no more; half the evaluation time)")
    parser.add_argument("--learning-rate", type=float, default=BENCH_CONFIG.learning_rate,
                        help="peak learning rate (default: %(default)s)")
    parser.add_argument("--adapters", nargs="+", choices=list(CORPORA), default=list(CORPORA),
                        help="which authors to train an adapter on (all are evaluated)")
    parser.add_argument("--speed-only", type=int, metavar="STEPS", default=0,
                        help="only time STEPS training steps with gradient checkpointing on and "
                             "off (the automatic choice) on the first adapter's corpus")
    args = parser.parse_args()
    if args.speed_only:
        return training_speed(args.model, args.adapters[0], args.speed_only)

    base = registry.resolve_model(args.model)
    tokenizer = GgufTokenizer(base)
    work = smallcoder_home() / "bench-train" / args.model
    # The machine's raw llama.cpp speed, measured in the same run as every figure below.
    speed = raw_speed(base, (corpus_dir("click", CORPORA["click"]) / "click" / "core.py")
                      .read_text())
    print(f"raw llama.cpp: {speed['raw_prompt_tokens_per_s']} prompt, "
          f"{speed['raw_generation_tokens_per_s']} generated tokens/s", file=sys.stderr)
    data = {}
    for name, requirement in CORPORA.items():
        dataset = mine([corpus_dir(name, requirement)])
        print(f"== {name}\n{dataset.stats.summary()}", file=sys.stderr)
        data[name] = (dataset,
                      build_examples(dataset.train, tokenizer, max_tokens=SEQUENCE_TOKENS),
                      build_examples(dataset.held_out, tokenizer, seed=1,
                                     max_tokens=SEQUENCE_TOKENS),
                      build_examples(dataset.validation, tokenizer, seed=1,
                                     max_tokens=SEQUENCE_TOKENS))

    authors = {name: author_code(dataset, name) for name, (dataset, *_) in data.items()}
    # The base is the same in every row: score it once per author (with the guard set when that
    # author's adapter is trained), not once per adapter.
    base_arms = {}
    for target, (target_dataset, _, held_out, _) in data.items():
        if args.own_only and target not in args.adapters:
            continue
        corpus = style_features("\n".join(source.text for source in target_dataset.train))
        tasks = guard_tasks(args.guard) if target in args.adapters else []
        prompts = style_prompts(target_dataset.held_out + target_dataset.validation,
                                args.style_functions)
        base_arms[target] = score_arm(base, None, held_out[:args.eval_examples], corpus, tasks,
                                      prompts)
        print(f"base on {target}: {base_arms[target][0]}", file=sys.stderr, flush=True)

    rows = []
    for name in args.adapters:
        dataset, examples, _, validation = data[name]
        out = work / f"{name}.gguf"
        config = replace(BENCH_CONFIG, max_minutes=args.minutes,
                         learning_rate=args.learning_rate)
        started = time.perf_counter()
        result = train(base, examples, work / f"{name}.run", config, validation=validation)
        export_adapter(result.adapter_dir, out, Provenance(
            args.model, base_sha256(base), dataset.sha256, result.adapter_step, {}))
        minutes = (time.perf_counter() - started) / 60
        probe = list(examples[0].input_ids[:256])
        check = verify_export(base, result.adapter_dir, out, probe)
        print(f"{name}: {result.steps} steps (adapter of step {result.best_step}, validation "
              f"loss {result.validation_loss}), {result.tokens} tokens, "
              f"{result.tokens_per_second:.1f} tokens/s, {minutes:.1f} min; {check.summary()}",
              file=sys.stderr)
        for target, (target_dataset, _, held_out, _) in data.items():
            own = target == name
            if args.own_only and not own:
                continue
            corpus = "\n".join(source.text for source in target_dataset.train)
            base_scores, base_style = base_arms[target]
            if not own:
                base_scores = replace(base_scores, guard_exact_match=None)
            # On its own author, the style is also measured relative to the author, with the
            # other author as the cross-author control.
            report = evaluate_adapter(base, out, held_out, corpus,
                                      unseen=target_dataset.held_out + target_dataset.validation,
                                      examples=args.eval_examples,
                                      guard_sample=args.guard if own else 0,
                                      style_functions=args.style_functions,
                                      base_arm=(base_scores, base_style),
                                      author=authors[target] if own else None,
                                      others=[code for other, code in authors.items()
                                              if other != target] if own else ())
            if own:
                write_report(report, out, {"author": name, "training steps": str(result.steps)})
            rows.append({"adapter": name, "evaluated_on": target,
                         "train_tokens_per_second": round(result.tokens_per_second, 1),
                         "steps": result.steps, "tokens": result.tokens,
                         "adapter_step": result.adapter_step,
                         "validation_loss": result.validation_loss,
                         "train_minutes": round(minutes, 1),
                         "export_check": asdict(check),
                         "base": asdict(report.base), "adapter_scores": asdict(report.adapted),
                         "relative_style": relative_figures(report),
                         "style_features": {"corpus": report.style_features_corpus,
                                            "base": report.style_features_base,
                                            "adapter": report.style_features_adapted}})
            print_row(rows[-1])
            # Saved after every row: an hour's run that stops late still leaves its figures.
            RESULTS.mkdir(parents=True, exist_ok=True)
            (RESULTS / f"train-{args.model}.json").write_text(json.dumps(
                {"model": args.model, "raw_speed": speed, "minutes_per_adapter": args.minutes,
                 "learning_rate": args.learning_rate, "rows": rows}, indent=2))
    return 0


def training_speed(model: str, name: str, steps: int) -> int:
    """Training tokens/s with activations recomputed and kept, in the same run."""
    import tempfile

    base = registry.resolve_model(model)
    dataset = mine([corpus_dir(name, CORPORA[name])])
    examples = build_examples(dataset.train, GgufTokenizer(base), max_tokens=SEQUENCE_TOKENS)
    speeds = {}
    for checkpointing in (True, None):
        config = replace(BENCH_CONFIG, max_steps=steps, gradient_checkpointing=checkpointing)
        with tempfile.TemporaryDirectory() as folder:
            result = train(base, examples, Path(folder), config)
        label = "on" if checkpointing else "automatic"
        speeds[label] = round(result.tokens_per_second, 1)
        print(f"gradient checkpointing {label}: {result.tokens} tokens in {result.seconds:.0f} s"
              f" = {result.tokens_per_second:.1f} tokens/s", flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "train-speed.json").write_text(json.dumps(
        {"model": model, "corpus": name, "steps": steps, "tokens_per_second": speeds}, indent=2))
    return 0


def relative_figures(report) -> dict | None:
    """The gap closed, the classifier's shares and the cross-author control, as JSON."""
    if report.style_gap is None:
        return None
    shares = report.discrimination
    return {"gap_closed": report.style_gap.mean_closed,
            "features": [asdict(feature) | {"closed": feature.closed, "counted": feature.counted}
                         for feature in report.style_gap.features],
            "classifier_accuracy": shares and shares.held_out_accuracy,
            "classified_as_author": shares and {"base": shares.base_share,
                                                "adapter": shares.adapter_share},
            "cross_author": [{"other": control.name, "gap_closed": control.gap.mean_closed,
                              "base_share": control.base_share,
                              "adapter_share": control.adapter_share, "holds": control.holds}
                             for control in report.cross_author]}


def print_row(row: dict) -> None:
    before, after = row["base"], row["adapter_scores"]
    change = (before["perplexity"] - after["perplexity"]) / before["perplexity"] * 100
    guard = ("" if before["guard_exact_match"] is None else
             f"  guard {before['guard_exact_match']:.1f} -> {after['guard_exact_match']:.1f}")
    print(f"adapter {row['adapter']:>5} on {row['evaluated_on']:>5}: perplexity "
          f"{before['perplexity']:.3f} -> {after['perplexity']:.3f} ({change:+.1f}% lower)  "
          f"FIM exact {before['fim_exact_match']:.1f} -> {after['fim_exact_match']:.1f}  "
          f"style {before['style_agreement']:.1f} -> {after['style_agreement']:.1f} (in context "
          f"{before['style_in_context']:.1f} -> {after['style_in_context']:.1f}){guard}  "
          f"train {row['train_tokens_per_second']:.1f} tokens/s", flush=True)
    if (relative := row.get("relative_style")) is not None:
        closed = relative["gap_closed"]
        shares = relative["classified_as_author"] or {}
        controls = "; ".join(f"toward {c['other']}: closed {_share(c['gap_closed'])}, "
                             f"classified theirs {c['base_share']} -> {c['adapter_share']} %, "
                             f"{'holds' if c['holds'] else 'FAILS'}"
                             for c in relative["cross_author"])
        print(f"    style gap closed {_share(closed)} over "
              f"{sum(f['counted'] for f in relative['features'])} habits with room; classifier "
              f"{relative['classifier_accuracy']} % right on held-out code, new functions "
              f"classified the author's {shares.get('base')} -> {shares.get('adapter')} %; "
              f"cross-author control {controls or 'not run'}", flush=True)


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.0f}%"


if __name__ == "__main__":
    sys.exit(main())
