"""LoRA training of the personal adapter on the base loaded from the very GGUF inference uses.

Read it top to bottom like nanoGPT's train.py: configuration is one dataclass, then the model,
the optimizer and schedule, and one loop with progress, a wall-time budget and checkpoints.
A checkpoint is a peft adapter folder plus the optimizer and loop state; Ctrl-C saves one.
"""

from __future__ import annotations

import json
import math
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from training.examples import IGNORE_INDEX, Example, iterate_forever
from training.export import TARGET_MODULES
from training.stopping import StopRequest

CHECKPOINT_DIR = "checkpoint"
BEST_DIR = "best"  # the adapter at the lowest validation loss so far
# Activations are kept (no checkpointing) only when free memory holds this many times the estimate.
ACTIVATION_HEADROOM = 2.0
# Steps timed before the schedule is fitted to a wall-time budget.
STEPS_TO_TIME = 3
STATE_FILE = "trainer_state.pt"


@dataclass(frozen=True)
class TrainConfig:
    rank: int = 16
    alpha: float = 32.0
    dropout: float = 0.05
    learning_rate: float = 2e-4
    weight_decay: float = 0.0
    warmup_steps: int = 10
    max_steps: int = 400
    grad_accum: int = 4  # examples per optimizer step
    max_grad_norm: float = 1.0
    max_minutes: float | None = None
    checkpoint_every: int = 10  # optimizer steps
    dtype: str = "auto"  # "auto" | "float32" | "bfloat16"
    # None: on a GPU, or when the CPU's free memory cannot hold every layer's activations
    # (recomputing them costs a third of a step); off otherwise.
    gradient_checkpointing: bool | None = None
    threads: int | None = None
    seed: int = 0
    # With validation examples: their loss every `eval_every` steps (on up to
    # `validation_examples` of them); training keeps the adapter of the lowest, and stops after
    # `patience` evaluations without a new lowest.
    # Losses on a dozen examples swung by 0.1-0.2 between evaluations at a steady trend, and
    # three of those swings stopped a 30-minute run after 80 of its 270 steps.
    eval_every: int = 25
    validation_examples: int = 24
    patience: int = 5


@dataclass(frozen=True)
class TrainResult:
    adapter_dir: Path
    steps: int
    tokens: int
    seconds: float
    final_loss: float | None
    stopped_by: str  # "steps" | "time" | "interrupt" | "validation"
    validation_loss: float | None = None  # the lowest, at best_step (the adapter returned)
    best_step: int | None = None

    @property
    def adapter_step(self) -> int:
        """The step the returned adapter is from."""
        return self.steps if self.best_step is None else self.best_step

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0


@dataclass
class LoopState:
    """How far training has come, earlier runs included: what a checkpoint keeps beside the
    adapter and the optimizer."""

    step: int = 0
    tokens: int = 0
    seconds: float = 0.0  # at the last finished step
    losses: list[float] = field(default_factory=list)  # one per step

    @property
    def last_loss(self) -> float | None:
        return self.losses[-1] if self.losses else None

    def add_step(self, loss: float, tokens: int, seconds: float) -> None:
        self.step += 1
        self.tokens += tokens
        self.losses.append(loss)
        self.seconds = seconds


@dataclass(frozen=True)
class StepProgress:
    """Where training stands after an optimizer step: what the progress bar shows."""

    step: int
    max_steps: int
    loss: float
    tokens: int  # trained so far, resumed runs included
    tokens_per_second: float
    eta_seconds: float

    def bar(self, width: int = 24) -> str:
        filled = int(width * self.step / self.max_steps)
        return (f"[{'#' * filled}{'.' * (width - filled)}] step {self.step}/{self.max_steps} "
                f"loss {self.loss:.3f}  {self.tokens_per_second:.0f} tokens/s  "
                f"ETA {self.eta_seconds / 60:.1f} min")


def pick_dtype(wanted: str, device: str):
    """bf16 on a GPU, or on a CPU that computes in bf16 natively (avx512_bf16/AMX); else fp32."""
    import torch

    if wanted != "auto":
        return getattr(torch, wanted)
    if device == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        flags = ""
    return torch.bfloat16 if ("avx512_bf16" in flags or "amx_bf16" in flags) else torch.float32


def activation_bytes(model_config, tokens: int, dtype) -> int:
    """What one example's forward pass keeps for the backward pass without checkpointing, per
    decoder layer and token: about 15 hidden-size vectors (norms, projections, residuals, the
    LoRA inputs), 5 MLP-size ones and a row of attention weights per head."""
    import torch

    hidden, mlp = model_config.hidden_size, model_config.intermediate_size
    per_token = 15 * hidden + 5 * mlp + model_config.num_attention_heads * tokens
    return (per_token * tokens * model_config.num_hidden_layers
            * torch.tensor([], dtype=dtype).element_size())


def available_memory() -> int:
    """Bytes the system can still give (MemAvailable); 0 when unknown, which keeps memory low."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def load_base(gguf_path: Path, dtype, device: str):
    """The base model dequantized from the GGUF inference uses (transformers ≥ 5)."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name,
                                                 dtype=dtype)
    return model.to(device)


def lora_model(base, config: TrainConfig):
    """Plain LoRA on every attention and MLP projection: what llama.cpp can apply."""
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(r=config.rank, lora_alpha=config.alpha, lora_dropout=config.dropout,
                      target_modules=list(TARGET_MODULES), bias="none", use_dora=False,
                      use_rslora=False, task_type="CAUSAL_LM")
    return get_peft_model(base, lora)


def learning_rate(step: int, config: TrainConfig) -> float:
    """Linear warmup, then cosine decay to a tenth of the peak at max_steps."""
    if step < config.warmup_steps:
        return config.learning_rate * (step + 1) / config.warmup_steps
    progress = min(1.0, (step - config.warmup_steps) / max(1, config.max_steps
                                                            - config.warmup_steps))
    floor = config.learning_rate / 10
    return floor + 0.5 * (config.learning_rate - floor) * (1 + math.cos(math.pi * progress))


def train(gguf_path: Path, examples: list[Example], out_dir: Path, config: TrainConfig,
          *, validation: list[Example] | None = None,
          on_progress: Callable[[str], None] | None = None,
          on_step: Callable[[StepProgress], None] | None = None,
          stop: StopRequest | None = None) -> TrainResult:
    """Train (or resume) a LoRA adapter in `out_dir`; returns where the adapter is.

    Stops at max_steps, at the wall-time budget, at Ctrl-C (or `stop.request()`) within one
    decoder layer's work (training/stopping.py), or when the loss on `validation` (examples of
    files not trained on) has not fallen for `patience` evaluations; a checkpoint is saved each
    time. With validation, the adapter returned is the one of its lowest loss.
    Each step's figures go to `on_step` when given (a program reads them), else as a progress
    bar line to `on_progress` (a person reads it).
    """
    import torch

    if not examples:
        raise ValueError("no training examples: the repositories gave no usable source files")
    report = on_progress or (lambda line: print(line, file=sys.stderr, flush=True))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model, optimizer = _model_and_optimizer(gguf_path, examples, config, device, report)
    checkpoint = out_dir / CHECKPOINT_DIR
    watch = Validation(list(validation or [])[:config.validation_examples], out_dir / BEST_DIR)
    state, config = _start_or_resume(model, optimizer, checkpoint, watch, config, report)
    stop = stop or StopRequest()
    with stop.on_sigint(), stop.checked_in_every_layer(model):
        if watch.examples and state.step == 0 and watch.best_step is None:
            # Step 0 is the base itself (LoRA starts as a no-op): the mark training has to beat.
            report(watch.evaluate(model, 0, device))
        start, seconds_before = time.perf_counter(), state.seconds
        stopped_by, config = _loop(model, optimizer, examples, checkpoint, state, config, watch,
                                   device, report, on_step, stop)
        if (watch.examples and stopped_by in ("steps", "time") and state.step
                and watch.last_step != state.step):
            report(watch.evaluate(model, state.step, device))
        state.seconds = seconds_before + time.perf_counter() - start
        _save(model, optimizer, checkpoint, state, config, watch)
    adapter = watch.best_dir if watch.best_step is not None else checkpoint
    return TrainResult(adapter, state.step, state.tokens, state.seconds, state.last_loss,
                       stopped_by, watch.best_loss, watch.best_step)


def _loop(model, optimizer, examples: list[Example], checkpoint: Path, state: LoopState,
          config: TrainConfig, watch: Validation, device: str, report: Callable[[str], None],
          on_step: Callable[[StepProgress], None] | None, stop: StopRequest
          ) -> tuple[str, TrainConfig]:
    """Optimizer steps until a reason to stop; returns it, and the schedule as fitted to a
    wall-time budget (the checkpoint keeps it, so a resumed run ends where this one would).
    `state` follows the steps."""
    show = on_step or (lambda progress: report(progress.bar()))
    stream = _examples_from_step(examples, config, state.step)
    start, seconds_before, first_step = time.perf_counter(), state.seconds, state.step
    deadline = None if config.max_minutes is None else start + config.max_minutes * 60
    model.train()
    try:
        while state.step < config.max_steps:
            stop.check()  # a stop requested while the last step was being saved
            if (reason := _reason_to_stop(watch, config, deadline)) is not None:
                return reason, config
            loss, tokens = _optimizer_step(model, optimizer, stream, state.step, config, device)
            state.add_step(loss, tokens, seconds_before + time.perf_counter() - start)
            if deadline is not None and state.step - first_step == STEPS_TO_TIME:
                config = fit_schedule_to_deadline(config, state.step, STEPS_TO_TIME, start,
                                                  deadline)
            show(step_progress(state.step, config, loss, state.tokens, state.seconds, deadline))
            if _evaluate_and_checkpoint(model, optimizer, checkpoint, state, config, watch,
                                        device, report):
                return "validation", config
    except KeyboardInterrupt:
        report("interrupted: saving a checkpoint at the last finished step")
        return "interrupt", config
    return "steps", config


def _model_and_optimizer(gguf_path: Path, examples: list[Example], config: TrainConfig,
                         device: str, report: Callable[[str], None]):
    """The LoRA model on the base, and AdamW over the adapter's weights alone."""
    import torch

    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    dtype = pick_dtype(config.dtype, device)
    model = lora_model(load_base(gguf_path, dtype, device), config)
    if _gradient_checkpointing(model, examples, config, dtype, device, report):
        model.activation_checkpointing_enable(
            activation_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    trainable = [parameter for parameter in model.parameters() if parameter.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=config.learning_rate,
                                  weight_decay=config.weight_decay)
    return model, optimizer


def _gradient_checkpointing(model, examples: list[Example], config: TrainConfig, dtype,
                            device: str, report: Callable[[str], None]) -> bool:
    """Whether to recompute activations in the backward pass: as configured, else on a GPU or
    when free memory cannot hold the longest example's ACTIVATION_HEADROOM times (said why)."""
    if config.gradient_checkpointing is not None:
        return config.gradient_checkpointing
    needed = activation_bytes(model.config, max(len(e.input_ids) for e in examples), dtype)
    free = available_memory()
    checkpointing = device != "cpu" or needed * ACTIVATION_HEADROOM > free
    report(f"gradient checkpointing {'on' if checkpointing else 'off'}: activations need "
           f"about {needed / 2**30:.1f} GiB, {free / 2**30:.1f} GiB free on the {device}")
    return checkpointing


def _examples_from_step(examples: list[Example], config: TrainConfig,
                        step: int) -> Iterator[Example]:
    """The endless stream of training examples from where `step` steps left it: the same
    example order as without a break."""
    stream = iterate_forever(examples, config.seed)
    for _ in range(step * config.grad_accum):
        next(stream)
    return stream


def _reason_to_stop(watch: Validation, config: TrainConfig, deadline: float | None) -> str | None:
    """Why not to take another step, before taking it; None to go on."""
    if watch.examples and watch.stale >= config.patience:
        return "validation"  # a resumed run that had already stopped so
    if deadline is not None and time.perf_counter() >= deadline:
        return "time"
    return None


def _optimizer_step(model, optimizer, stream: Iterator[Example], step: int, config: TrainConfig,
                    device: str) -> tuple[float, int]:
    """One optimizer step over `grad_accum` examples at the learning rate of `step`; returns
    its loss and the tokens it trained on."""
    import torch

    for group in optimizer.param_groups:
        group["lr"] = learning_rate(step, config)
    step_loss, step_tokens = 0.0, 0
    for _ in range(config.grad_accum):
        example = next(stream)
        loss = middle_loss(model, example, device) / config.grad_accum
        loss.backward()
        step_loss += loss.item()
        step_tokens += len(example.input_ids)
    trainable = [parameter for group in optimizer.param_groups for parameter in group["params"]]
    torch.nn.utils.clip_grad_norm_(trainable, config.max_grad_norm)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return step_loss, step_tokens


def _evaluate_and_checkpoint(model, optimizer, checkpoint: Path, state: LoopState,
                             config: TrainConfig, watch: Validation, device: str,
                             report: Callable[[str], None]) -> bool:
    """After a step: the validation loss every `eval_every` steps, and a checkpoint every
    `checkpoint_every` and when validation stops training. True when it does."""
    stop = False
    if watch.examples and state.step % config.eval_every == 0:
        report(watch.evaluate(model, state.step, device))
        stop = watch.stale >= config.patience
    if state.step % config.checkpoint_every == 0 or stop:
        _save(model, optimizer, checkpoint, state, config, watch)
    if stop:
        report(f"stopping: validation loss has not fallen for {config.patience} "
               f"evaluations; keeping the adapter of step {watch.best_step}")
    return stop


class Validation:
    """The loss on files not trained on, and the adapter at its lowest so far."""

    def __init__(self, examples: list[Example], best_dir: Path) -> None:
        self.examples = examples
        self.best_dir = best_dir
        self.best_loss: float | None = None
        self.best_step: int | None = None
        self.last_step: int | None = None
        self.stale = 0  # evaluations since the lowest

    def evaluate(self, model, step: int, device: str) -> str:
        """Measure after `step`; keep the adapter when it is the lowest. Returns what to say."""
        import torch

        model.eval()
        with torch.no_grad():
            loss = sum(middle_loss(model, example, device).item()
                       for example in self.examples) / len(self.examples)
        model.train()
        self.last_step = step
        if self.best_loss is None or loss < self.best_loss:
            self.best_loss, self.best_step, self.stale = loss, step, 0
            _write_folder(self.best_dir, lambda scratch: save_adapter(model, scratch))
            return f"validation loss {loss:.3f} at step {step}: the lowest so far, kept"
        self.stale += 1
        return (f"validation loss {loss:.3f} at step {step} (lowest {self.best_loss:.3f} at "
                f"step {self.best_step})")

    def state(self) -> dict:
        return {"best_loss": self.best_loss, "best_step": self.best_step,
                "last_step": self.last_step, "stale": self.stale}

    def restore(self, state: dict) -> None:
        if (self.best_dir / "adapter_model.safetensors").is_file():
            self.best_loss, self.best_step = state.get("best_loss"), state.get("best_step")
            self.last_step, self.stale = state.get("last_step"), state.get("stale", 0)


def middle_loss(model, example: Example, device: str):
    """Mean cross-entropy of the middle tokens. The vocabulary projection (151k rows) runs only
    at the positions that predict them, not over the whole prompt: a fifth of a step's work."""
    import torch

    labels = torch.tensor(example.labels, device=device)
    positions = torch.nonzero(labels[1:] != IGNORE_INDEX).squeeze(1)
    logits = model(input_ids=torch.tensor([example.input_ids], device=device),
                   logits_to_keep=positions).logits.reshape(len(positions), -1)
    return torch.nn.functional.cross_entropy(logits.float(), labels[positions + 1])


def fit_schedule_to_deadline(config: TrainConfig, step: int, steps_timed: int, start: float,
                             deadline: float) -> TrainConfig:
    """Shorten the schedule so the cosine decay ends when the wall-time budget does."""
    per_step = (time.perf_counter() - start) / steps_timed
    fitting = step + int((deadline - time.perf_counter()) / per_step)
    return replace(config, max_steps=max(step + 1, min(config.max_steps, fitting)))


def step_progress(step: int, config: TrainConfig, loss: float, tokens: int, elapsed: float,
                  deadline: float | None) -> StepProgress:
    """The figures after `step`; the time left is the steps left at the pace so far, or less
    when the wall-time budget ends sooner."""
    remaining = (config.max_steps - step) * elapsed / step
    if deadline is not None:
        remaining = min(remaining, max(0.0, deadline - time.perf_counter()))
    return StepProgress(step=step, max_steps=config.max_steps, loss=loss, tokens=tokens,
                        tokens_per_second=tokens / elapsed if elapsed > 0 else 0.0,
                        eta_seconds=remaining)


def save_adapter(model, folder: Path) -> None:
    """The peft adapter alone. The embeddings are not trained, and saying so keeps peft from
    asking the Hugging Face Hub whether the base's vocabulary changed (a network call, and
    seconds of timeout offline, at every checkpoint)."""
    model.save_pretrained(str(folder), save_embedding_layers=False)


def _save(model, optimizer, checkpoint: Path, state: LoopState, config: TrainConfig,
          watch: Validation) -> None:
    """The adapter with the optimizer and loop state."""
    import torch

    def write(scratch: Path) -> None:
        save_adapter(model, scratch)
        torch.save({"step": state.step, "tokens": state.tokens, "seconds": state.seconds,
                    "losses": state.losses, "max_steps": config.max_steps,
                    "optimizer": optimizer.state_dict(), "validation": watch.state()},
                   scratch / STATE_FILE)
        (scratch / "train_config.json").write_text(json.dumps(asdict(config), indent=1))

    _write_folder(checkpoint, write)


def _write_folder(folder: Path, write: Callable[[Path], None]) -> None:
    """Write `folder` anew beside the old one, then swap: a crash never leaves half of one."""
    scratch = folder.with_name(folder.name + ".partial")
    shutil.rmtree(scratch, ignore_errors=True)
    write(scratch)
    old = folder.with_name(folder.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if folder.exists():
        folder.rename(old)
    scratch.rename(folder)
    shutil.rmtree(old, ignore_errors=True)


class CheckpointError(ValueError):
    """A checkpoint that cannot be trusted or read; the message names the file."""


def load_loop_state(path: Path) -> dict:
    """The loop and optimizer state saved with a checkpoint: tensors, numbers and containers
    only (`weights_only`), so that a planted file cannot run code when it is unpickled."""
    import pickle

    import torch

    try:
        return torch.load(path, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as error:
        raise CheckpointError(
            f"{path} holds more than tensors and numbers, or is damaged; it was not loaded. "
            f"Delete {path.parent} to train from the start. ({str(error).splitlines()[0]})"
        ) from None


def _start_or_resume(model, optimizer, checkpoint: Path, watch: Validation,
                     config: TrainConfig, report: Callable[[str], None]
                     ) -> tuple[LoopState, TrainConfig]:
    """The loop state and schedule of the checkpoint, loaded into the model, optimizer and
    validation; a fresh start without one."""
    from peft.utils import set_peft_model_state_dict
    from safetensors.torch import load_file

    if not (checkpoint / STATE_FILE).is_file():
        return LoopState(), config
    set_peft_model_state_dict(model, load_file(str(checkpoint / "adapter_model.safetensors")))
    state = load_loop_state(checkpoint / STATE_FILE)
    optimizer.load_state_dict(state["optimizer"])
    watch.restore(state.get("validation", {}))
    report(f"resuming from step {state['step']} ({state['tokens']:,} tokens trained)")
    return (LoopState(state["step"], state["tokens"], state["seconds"], state["losses"]),
            replace(config, max_steps=state["max_steps"]))
