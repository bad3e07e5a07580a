"""`afi worker`: claim queued runs from the registry and train them, each in a child process.

Many workers on many machines can share one registry: claiming is atomic (registry.runs.
claim_next_run). The worker, not the trainer, vouches for its runs: while a child process is alive
the worker heartbeats its run and accrues its cost, so a run whose worker dies (machine lost,
SIGKILL) stops heartbeating, and any worker's stale sweep moves it to preempted and back to the
queue, where the next claim resumes it from its last checkpoint. A child exits the moment its
worker is gone (a pipe only the worker writes to reads end-of-file), so a killed worker never
leaves a training process running unsupervised.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import socket
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from afi.errors import UsageError
from afi.launch.budget import UsageMeter
from afi.launch.pricing import LOCAL_ACCELERATOR
from registry import runs as registry_runs
from registry.db import in_transaction, is_connection_lost, make_engine, mask_url, session_scope
from registry.errors import InvalidTransition, RegistryError
from registry.records import RunRecord

log = logging.getLogger(__name__)

MODES = ("forever", "once", "until-empty")
# A child gets this long after SIGTERM to finish its step and checkpoint before it is killed.
STOP_GRACE_S = 60.0
TRAINER_MODULE = "afi.train.service"


@dataclass(frozen=True)
class WorkerOptions:
    max_parallel: int = 1
    # forever: poll for work until stopped; once: claim up to max_parallel runs, train them, exit;
    # until-empty: exit when no run of this backend is queued or running anywhere (a running one
    # may still go stale and need this worker).
    mode: str = "forever"
    stale_after_s: float = 120.0  # a running run without a heartbeat this long is presumed dead
    poll_s: float = 5.0
    backend: str = "local"
    # CPU threads each child's torch may use; None: the machine's cores shared among max_parallel
    # children. Torch's default (every core in every child) oversubscribes the CPU: two children
    # at two threads each on two cores ran slower than at one each.
    threads: int | None = None
    # When a run it trained was its experiment's last, score the experiment on test (runs and
    # baselines). Off for callers that evaluate themselves, as the quickstart does.
    closing_evaluation: bool = True

    def validate(self) -> WorkerOptions:
        if self.mode not in MODES:
            raise UsageError(f"unknown worker mode {self.mode!r}: choose one of {', '.join(MODES)}")
        if self.max_parallel < 1:
            raise UsageError(f"--max-parallel must be at least 1, got {self.max_parallel}")
        if not self.poll_s > 0:
            raise UsageError(f"poll interval must be positive, got {self.poll_s}")
        if self.threads is not None and self.threads < 1:
            raise UsageError(f"--threads must be at least 1, got {self.threads}")
        # Heartbeats come every poll, so a shorter stale window would requeue live runs.
        if self.stale_after_s < 3 * self.poll_s:
            raise UsageError(
                f"--stale-after ({self.stale_after_s:g}s) must be at least 3 poll intervals "
                f"({3 * self.poll_s:g}s), or live runs would be taken for dead"
            )
        return self

    @property
    def threads_per_run(self) -> int:
        return self.threads or max(1, (os.cpu_count() or 1) // self.max_parallel)


@dataclass(frozen=True)
class RunOutcome:
    run_id: int
    name: str
    status: str  # the run's status after its child exited
    exit_code: int | None


@dataclass
class _Active:
    """A run this worker is training: its child process and cost meter."""

    run: RunRecord
    process: Any  # multiprocessing.Process
    meter: UsageMeter


@dataclass
class WorkerReport:
    worker_id: str
    outcomes: list[RunOutcome] = field(default_factory=list)
    requeued: list[int] = field(default_factory=list)  # stale runs this worker sent back


def new_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class Worker:
    def __init__(self, db_url: str, options: WorkerOptions, worker_id: str | None = None) -> None:
        self.db_url = db_url
        self.options = options.validate()
        self.worker_id = worker_id or new_worker_id()
        self.host = socket.gethostname()
        self.engine = make_engine(db_url)
        self.active: dict[int, _Active] = {}
        self.closing: list[Any] = []  # processes evaluating experiments whose last run ended here
        self.report = WorkerReport(self.worker_id)
        self._stop = threading.Event()
        self._context = child_context()
        # Children hold the read end; only this process holds the write end, so a child reads
        # end-of-file exactly when the worker is gone, however it died.
        self._lifeline, self._lifeline_writer = self._context.Pipe(duplex=False)

    def stop(self) -> None:
        """Ask the loop to stop claiming and hand its runs back to the queue (SIGTERM, Ctrl-C)."""
        self._stop.set()

    def run(self) -> WorkerReport:
        log.info("worker %s on %s (%s)", self.worker_id, mask_url(self.db_url), self.options)
        claimed_any = False
        self._warm_up()
        try:
            while not self._stop.is_set():
                try:
                    self.sweep_stale()
                    self._supervise()
                    if self.options.mode != "once" or not claimed_any:
                        claimed_any |= self._fill()
                    if self._finished(claimed_any):
                        break
                except RegistryError as exc:
                    if not is_connection_lost(exc.__cause__):
                        raise
                    # A registry restart: the children ride it out on their own; this loop
                    # looks again next poll (each step of it is safe to repeat).
                    log.warning("registry unreachable, trying again in %gs: %s", self.options.poll_s, exc)
                self._stop.wait(self.options.poll_s)
        finally:
            self._hand_back()
            self.engine.dispose()
        return self.report

    def _warm_up(self) -> None:
        """Start the fork server (it imports the trainer) before claiming anything: a claimed run
        must not sit unheartbeaten for those seconds, or another worker would take it for dead."""
        process = self._context.Process(target=_ready, name="afi-warm-up")
        process.start()
        process.join()

    def _finished(self, claimed_any: bool) -> bool:
        for ended in [p for p in self.closing if not p.is_alive()]:
            ended.join()
            self.closing.remove(ended)
        if self.active or self.closing or self.options.mode == "forever":
            return False
        if self.options.mode == "once":
            return True
        with session_scope(self.engine) as s:
            waiting = [
                run for status in ("queued", "running")
                for run in registry_runs.list_runs(s, status=status)
                if run.backend == self.options.backend
            ]
        return not waiting

    def sweep_stale(self) -> None:
        requeued = sweep_stale(self.engine, self.options.stale_after_s, self.options.backend)
        for run_id in requeued:
            log.warning("run %s had no heartbeat for %gs: requeued", run_id, self.options.stale_after_s)
        self.report.requeued.extend(requeued)

    def _fill(self) -> bool:
        claimed = False
        while len(self.active) < self.options.max_parallel and not self._stop.is_set():
            run = registry_runs.claim_next_run(
                self.engine, self.worker_id, backend=self.options.backend, host=self.host
            )
            if run is None:
                break
            self._start(run)
            claimed = True
        return claimed

    def _start(self, run: RunRecord) -> None:
        if run.accelerator is None:
            # Runs queued without --gpu train on the worker's own machine, which costs nothing.
            with session_scope(self.engine) as s:
                run = registry_runs.update_run(
                    s, run.id, accelerator=f"{LOCAL_ACCELERATOR}:1", hourly_price=0.0
                )
        process = self._context.Process(
            target=train_in_child,
            args=(self.db_url, run.id, self.worker_id, self._lifeline, self.options.threads_per_run),
            name=f"afi-run-{run.id}",
        )
        process.start()
        self.active[run.id] = _Active(run, process, UsageMeter(self.engine, run))
        log.info("run %s (%s): training in process %s", run.id, run.name, process.pid)

    def _supervise(self) -> None:
        for run_id, active in list(self.active.items()):
            active.meter.record()
            if active.process.is_alive():
                if not self._still_ours(run_id, active.process.pid):
                    _stop_process(active.process)
                continue
            active.process.join()
            del self.active[run_id]
            self.report.outcomes.append(self._settle(active))

    def _still_ours(self, run_id: int, child_pid: int) -> bool:
        """Heartbeat a run; False once it is no longer this worker's to train: cancelled, or
        (our heartbeats having been late) swept as stale and requeued or claimed by another.
        Later curriculum stages are new runs the trainer starts in the child under the child's
        own id (host:pid); they are heartbeaten too."""
        try:
            with session_scope(self.engine) as s:
                status = registry_runs.heartbeat(s, run_id)
                owner = registry_runs.get_run(s, run_id).worker_id
                for stage_run in registry_runs.list_runs(s, status="running"):
                    if stage_run.worker_id == f"{self.host}:{child_pid}":
                        registry_runs.heartbeat(s, stage_run.id)
        except RegistryError as exc:  # a database blip must not stop the training
            log.warning("heartbeat for run %s failed: %s", run_id, exc)
            return True
        if status in ("completed", "failed"):
            return True  # the child is exiting on its own
        if status != "running" or owner != self.worker_id:
            log.warning("run %s is %s (worker %s): stopping its training here", run_id, status, owner)
            return False
        return True

    def _settle(self, active: _Active) -> RunOutcome:
        """After a child exits: a run it left `running` died with it (failed); one it stopped
        cleanly (preempted: a signal) goes back to the queue to resume."""
        code = active.process.exitcode

        def settle(s: Any) -> RunRecord:
            run = registry_runs.get_run(s, active.run.id)
            if run.status == "running" and run.worker_id == self.worker_id:
                return registry_runs.transition(
                    s, run.id, "failed", expected={"running"},
                    message=f"training process exited with code {code} without finishing the run",
                )
            if run.status == "preempted":
                return registry_runs.transition(s, run.id, "queued", expected={"preempted"})
            return run

        run = in_transaction(self.engine, settle)
        log.info("run %s (%s) ended %s", run.id, run.name, run.status)
        if run.status == "completed" and run.experiment is not None and self.options.closing_evaluation:
            # In a child: scoring a test split can outlast the heartbeats of the runs still here.
            closing = self._context.Process(
                target=evaluate_in_child, args=(self.db_url, run.experiment), name="afi-closing-eval"
            )
            closing.start()
            self.closing.append(closing)
        return RunOutcome(run.id, run.name, run.status, code)

    def _hand_back(self) -> None:
        """Stopping with runs in progress: stop them (they checkpoint on SIGTERM) and queue them
        again, to resume on whichever worker claims them next."""
        for closing in self.closing:
            closing.join()
        for run_id, active in list(self.active.items()):
            _stop_process(active.process)
            active.meter.record()
            try:
                with session_scope(self.engine) as s:
                    requeue_stopped(s, run_id, self.worker_id)
            except RegistryError as exc:  # unreachable: the stale sweep of another worker copes
                log.warning("could not requeue run %s: %s", run_id, exc)
            del self.active[run_id]


def requeue_stopped(s: Any, run_id: int, worker_id: str) -> None:
    """Queue again a run whose training `worker_id` stopped: running -> preempted -> queued, or
    preempted -> queued where the trainer, stopping on SIGTERM, marked it preempted itself (even
    between our read and our write: transitions lock the row). Runs that ended, or that are no
    longer this worker's, are left as they are."""
    run = registry_runs.get_run(s, run_id)
    if run.status == "running" and run.worker_id == worker_id:
        try:
            registry_runs.transition(
                s, run_id, "preempted", expected={"running"}, message=f"worker {worker_id} stopped"
            )
        except InvalidTransition:
            pass  # the trainer got there first: the run is preempted, or it finished
    try:
        registry_runs.transition(s, run_id, "queued", expected={"preempted"})
    except InvalidTransition:
        pass  # it ended (completed, failed, cancelled): nothing to resume


def sweep_stale(engine: Any, stale_after_s: float, requeue_backend: str = "local") -> list[int]:
    """Running runs whose heartbeat stopped become preempted; those of `requeue_backend` go back
    to the queue to resume. Others stay preempted: SkyPilot relaunches its own jobs, and an
    Optuna trial whose process died is retried as a new trial. Returns the requeued run ids."""
    try:
        with session_scope(engine) as s:
            stale = registry_runs.mark_stale(s, stale_after_s, to="preempted")
            requeued = []
            for run_id in stale:
                if registry_runs.get_run(s, run_id).backend == requeue_backend:
                    registry_runs.transition(s, run_id, "queued", expected={"preempted"})
                    requeued.append(run_id)
    except InvalidTransition:
        return []  # another worker swept the same run first; its sweep stands
    return requeued


def _stop_process(process: Any) -> None:
    process.terminate()
    process.join(STOP_GRACE_S)
    if process.is_alive():
        process.kill()
        process.join()


def child_context() -> Any:
    """Children come from a fork server that has imported the trainer (torch: seconds) once, so
    each run starts at once; it never opens a database connection or CUDA, so forking it is safe.
    Where there is no fork server (Windows), children are spawned and import for themselves."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([TRAINER_MODULE])
    return context


def _ready() -> None:
    """A child that does nothing: starting it starts the fork server."""


def train_in_child(db_url: str, run_id: int, worker_id: str, lifeline: Any, threads: int) -> None:
    """Child process body: train one run `worker_id` claimed, and its later curriculum stages,
    on `threads` CPU threads; exit at once if the worker dies."""
    _exit_with_worker(lifeline)
    import torch

    from afi.train.callbacks import ProgressLog
    from afi.train.service import start_run

    torch.set_num_threads(threads)
    engine = make_engine(db_url)
    try:
        # Lines, not a bar: workers run under nohup, systemd and the quickstart, into logs.
        start_run(engine, run_id, resume=True, claimed_by=worker_id, callbacks=[ProgressLog(f"run {run_id}")])
    except BaseException as exc:
        _record_failure(engine, run_id, worker_id, exc)
        raise
    finally:
        engine.dispose()


def evaluate_in_child(db_url: str, experiment: str) -> None:
    """The experiment's closing test evaluation, if its last run just ended (else nothing)."""
    from afi.launch.experiments import evaluate_finished_experiment

    engine = make_engine(db_url)
    try:
        for report in evaluate_finished_experiment(engine, experiment):
            log.info("experiment %s: %s", experiment, ", ".join(
                f"{s.run} {s.metrics.get('psnr', float('nan')):.2f} dB" for s in report.scores))
    except Exception as exc:  # the runs are trained and kept: `afi eval` can score them later
        log.warning("experiment %s: closing evaluation failed: %s", experiment, exc)
    finally:
        engine.dispose()


def _record_failure(engine: Any, run_id: int, worker_id: str, exc: BaseException) -> None:
    """Say on the run why its training process failed, where the trainer could not (an error
    before its registry logging started, or in it): otherwise the worker can only say that the
    process exited. A run that is no longer running for this worker is left as it is."""
    detail = str(exc).splitlines()[0] if str(exc) else ""

    def record(s: Any) -> None:
        run = registry_runs.get_run(s, run_id)
        if run.status == "running" and run.worker_id == worker_id:
            registry_runs.transition(
                s, run_id, "failed", expected={"running"}, message=f"{type(exc).__name__}: {detail}"
            )

    try:
        in_transaction(engine, record)
    except Exception as error:  # the registry itself may be what failed: the worker settles the run
        log.warning("run %s: could not record its failure (%s): %s", run_id, exc, error)


def _exit_with_worker(lifeline: Any) -> None:
    """An orphaned child (its worker SIGKILLed) must not train on unsupervised: it exits as soon
    as its end of the worker's lifeline reads end-of-file. (Watching the parent process would
    not do: the fork server is the parent, and it outlives the worker while children live.)"""

    def watch() -> None:
        try:
            lifeline.recv()  # the worker never writes: this returns only at end-of-file
        except EOFError:
            pass
        os._exit(1)

    threading.Thread(target=watch, name="worker-lifeline", daemon=True).start()
