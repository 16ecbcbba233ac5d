"""An Optuna study as declared in parameters: its space, sampler, pruner and storage, and the loop that runs it.

`n_trials` is the study's total, not this process's share: Optuna's distributed mode runs one
worker per process or machine on one storage, and each worker starts a trial only while the study
holds fewer than `n_trials` trials of any state (running ones included). On a SQLite storage the
workers of one machine take a lock file beside the database around that count and the trial's
creation (and around the storage's creation), so together they run exactly `n_trials`. On a server
database (PostgreSQL, MySQL) workers that check at the same instant can each add one more, and the
study is best created by one worker before the others start.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from pixelheal.config import coerce, require, split_kind
from pixelheal.tuning.space import Distribution, parse_space

try:
    import fcntl
except ImportError:  # Windows: no lock file; the count alone guards the total
    fcntl = None

logger = logging.getLogger(__name__)

DEFAULT_STORAGE = "sqlite:///data/07_model_output/optuna.db"  # relative to the folder a run starts in


WORKERS_ATTR = "pixelheal.workers"  # study user attribute: how many workers have opened the study


def _seed(seed: int | None, worker: int) -> int | None:
    """Worker k of a study draws with `seed + k`: workers sharing it never repeat each other's draws."""
    return None if seed is None else seed + worker


@dataclass(frozen=True)
class TPE:
    """Optuna's default sampler: random for the first `n_startup_trials`, then a tree-structured Parzen estimator."""

    seed: int | None = 0
    n_startup_trials: int = 10
    multivariate: bool = False

    def build(self, worker: int) -> optuna.samplers.BaseSampler:
        return optuna.samplers.TPESampler(
            seed=_seed(self.seed, worker), n_startup_trials=self.n_startup_trials, multivariate=self.multivariate
        )


@dataclass(frozen=True)
class RandomSearch:
    """Independent uniform draws."""

    seed: int | None = 0

    def build(self, worker: int) -> optuna.samplers.BaseSampler:
        return optuna.samplers.RandomSampler(seed=_seed(self.seed, worker))


@dataclass(frozen=True)
class Median:
    """Stop a trial whose best score so far is worse than the median of the finished trials at that epoch."""

    n_startup_trials: int = 5  # finished trials before any is pruned
    n_warmup_steps: int = 0  # epochs of each trial never pruned
    interval_steps: int = 1

    def build(self) -> optuna.pruners.BasePruner:
        return optuna.pruners.MedianPruner(self.n_startup_trials, self.n_warmup_steps, self.interval_steps)


@dataclass(frozen=True)
class Percentile(Median):
    """As `median`, keeping only trials in the best `percentile` % (a small percentile prunes hard)."""

    percentile: float = 25.0

    def __post_init__(self) -> None:
        require(0 <= self.percentile <= 100, "percentile", f"must be in [0, 100], got {self.percentile}")

    def build(self) -> optuna.pruners.BasePruner:
        return optuna.pruners.PercentilePruner(
            self.percentile, self.n_startup_trials, self.n_warmup_steps, self.interval_steps
        )


@dataclass(frozen=True)
class NoPruning:
    """Every trial runs all its epochs."""

    def build(self) -> optuna.pruners.BasePruner:
        return optuna.pruners.NopPruner()


SAMPLERS: dict[str, type] = {"tpe": TPE, "random": RandomSearch}
PRUNERS: dict[str, type] = {"median": Median, "percentile": Percentile, "none": NoPruning}


def _kind_block(block: Any, key: str, kinds: dict[str, type], what: str) -> Any:
    kind, params = split_kind(block, key, list(kinds), what)
    return coerce(kinds[kind], params, key)


@dataclass(frozen=True)
class StudyConfig:
    """A `tune.<arch>` block (declared: see `pixelheal.config`); `space` as `pixelheal.tuning.space` reads it."""

    space: dict[str, Any]
    n_trials: int = 20  # the study's total, over every worker sharing its storage
    sampler: dict[str, Any] = field(default_factory=lambda: {"kind": "tpe"})
    pruner: dict[str, Any] = field(default_factory=lambda: {"kind": "median"})
    storage: str = DEFAULT_STORAGE  # any Optuna RDB URL
    study_name: str | None = None  # null: the caller's default (the architecture key)
    sqlite_timeout_s: float = 60.0  # how long a SQLite writer waits for another worker's lock

    def __post_init__(self) -> None:
        require(self.n_trials >= 1, "n_trials", f"must be at least 1, got {self.n_trials}")
        require(self.sqlite_timeout_s > 0, "sqlite_timeout_s", f"must be positive, got {self.sqlite_timeout_s}")
        require(self.study_name is None or bool(self.study_name), "study_name", "must be a non-empty string or null")
        # every error before the first trial: the space, the sampler and the pruner are built once here
        self.distributions()
        self.make_sampler()
        self.make_pruner()

    def distributions(self) -> dict[str, Distribution]:
        return parse_space(self.space)

    def make_sampler(self, worker: int = 0) -> optuna.samplers.BaseSampler:
        """The sampler of the study's `worker`-th worker (0: the first to open it draws as configured)."""
        return _kind_block(self.sampler, "sampler", SAMPLERS, "sampler").build(worker)

    def make_pruner(self) -> optuna.pruners.BasePruner:
        return _kind_block(self.pruner, "pruner", PRUNERS, "pruner").build()


def _sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL (None for other databases and in-memory SQLite)."""
    parsed = make_url(url)
    return Path(parsed.database) if parsed.get_backend_name() == "sqlite" and parsed.database else None


def open_study(config: StudyConfig, name: str, direction: str, where: str) -> optuna.Study:
    """The study `name` on the configured storage, created when new; errors name `<where>.<key>`.

    Each opening counts as a worker (`WORKERS_ATTR`), whose sampler is seeded `seed + k`: a new
    study run by one process draws as configured, and a second worker, or a later run continuing
    the study, draws other values than the first.
    """
    try:
        database = _sqlite_file(config.storage)
        if database is not None:
            database.parent.mkdir(parents=True, exist_ok=True)
        connect = {"connect_args": {"timeout": config.sqlite_timeout_s}} if database is not None else {}
        with _storage_lock(config.storage):  # two workers creating one new SQLite file would both make its tables
            storage = optuna.storages.RDBStorage(config.storage, engine_kwargs=connect)
            study = optuna.create_study(
                storage=storage, pruner=config.make_pruner(), study_name=name, direction=direction, load_if_exists=True
            )
            worker = study.user_attrs.get(WORKERS_ATTR, 0)
            study.set_user_attr(WORKERS_ATTR, worker + 1)
    except (SQLAlchemyError, OSError) as error:
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        raise ValueError(f"{where}.storage: cannot open the Optuna storage {config.storage!r} ({reason})") from None
    if study.direction.name.lower() != direction:
        raise ValueError(
            f"{where}.study_name: study {name!r} in {config.storage} was made to {study.direction.name.lower()}, "
            f"not {direction} as its metric now asks; give this metric a new study_name"
        )
    study.sampler = config.make_sampler(worker)
    return study


@contextlib.contextmanager
def _storage_lock(storage: str) -> Iterator[None]:
    """Exclusive among this machine's workers on a SQLite `storage` (a lock file beside it); a no-op for others."""
    database = _sqlite_file(storage)
    if database is None or fcntl is None:
        yield
        return
    with open(database.with_name(database.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def report_epochs(trial: optuna.Trial, key: str) -> Callable[[dict[str, float]], None]:
    """An `on_epoch` callback: report the record's `key` at its epoch; raise TrialPruned when the pruner says so."""

    def report(record: dict[str, float]) -> None:
        epoch = int(record["epoch"])
        trial.report(float(record[key]), epoch)
        if trial.should_prune():
            raise optuna.TrialPruned(f"pruned after epoch {epoch} with {key}={record[key]:.4g}")

    return report


Callback = Callable[[optuna.Study, FrozenTrial], None]


def run_trials(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], float],
    n_trials: int,
    storage: str,
    *,
    catch: tuple[type[Exception], ...] = (),
    callbacks: Sequence[Callback] = (),
) -> list[FrozenTrial]:
    """Run trials until `study` holds `n_trials` (every worker's, of every state); this process's trials.

    A trial that raises `optuna.TrialPruned` is PRUNED, one that raises one of `catch` (a training
    run that diverged) is FAILED and the study goes on; any other error fails the trial and is
    raised; its message is the trial's user attribute `fail_reason`. `callbacks` see
    every trial of this process once it is told, as Optuna's `study.optimize` callbacks do.
    """
    finished = []
    while True:
        with _storage_lock(storage):  # count and create as one step: no worker adds a trial past n_trials
            if len(study.get_trials(deepcopy=False)) >= n_trials:
                return finished
            trial = study.ask()
        value, state, error = _evaluate(objective, trial)
        frozen = study.tell(trial, value, state)
        finished.append(frozen)
        for callback in callbacks:
            callback(study, frozen)
        if state == TrialState.FAIL and not isinstance(error, catch):
            raise error
        (logger.warning if state == TrialState.FAIL else logger.info)(
            "trial %d %s: %s (%d of %d in the study)",
            frozen.number,
            state.name.lower(),
            f"value {frozen.value:.4g}" if state == TrialState.COMPLETE else error,
            len(study.get_trials(deepcopy=False)),
            n_trials,
        )


def _evaluate(
    objective: Callable[[optuna.Trial], float], trial: optuna.Trial
) -> tuple[float | None, TrialState, BaseException | None]:
    """(value, state, what stopped it) of one trial; a failure's message becomes its `fail_reason` user attribute."""
    try:
        return objective(trial), TrialState.COMPLETE, None
    except optuna.TrialPruned as pruned:
        return None, TrialState.PRUNED, pruned
    except BaseException as error:  # told FAIL before it is raised (or, when caught, the study goes on)
        trial.set_user_attr("fail_reason", f"{type(error).__name__}: {error}")
        return None, TrialState.FAIL, error


def best_trial(study: optuna.Study, where: str) -> FrozenTrial:
    """The study's best completed trial; a one-line error naming the block when none completed."""
    states = [t.state for t in study.get_trials(deepcopy=False)]
    if TrialState.COMPLETE not in states:
        counts = ", ".join(f"{states.count(s)} {s.name.lower()}" for s in dict.fromkeys(states))
        raise ValueError(
            f"{where}: no trial of study {study.study_name!r} completed ({counts or 'none ran'}); "
            f"loosen {where}.pruner or raise {where}.n_trials"
        )
    return study.best_trial
