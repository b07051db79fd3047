"""The typed records of a run directory: one pydantic model per record.

| file                           | model            |
|--------------------------------|------------------|
| ``trials.jsonl`` (one a line)  | ``Trial``        |
| ``transcripts.jsonl.gz``       | ``Transcript`` (one gzip member a trial) |
| ``audit.jsonl`` (one a line)   | ``AuditAttempt`` |
| ``heartbeat.jsonl``            | ``Heartbeat``    |
| ``manifest.json``              | ``Manifest``     |
| ``results.json``               | ``Results``      |
| ``PARTIAL-RESULTS.json``       | ``PartialResults`` (``Results`` + ``missing``) |
| ``smoke.json``                 | ``Smoke``        |
| ``stop.json``                  | ``Stop``         |
| ``shard.json``                 | ``ShardInfo``    |
| ``stages.json``                | ``Stages``       |
| ``earlier-run.json``           | ``EarlierVerdict`` |

Every writer builds one of these and every reader validates through one of them: an unknown
field, a missing field or a wrong type is a ``RecordError`` naming the file (and line), exit 4.
Writers always write every field (defaults included), so reading requires every field.

``python -m gate.records --schema`` prints the JSON Schema of results.json /
PARTIAL-RESULTS.json that the package ships as ``gate/schemas/results.schema.json``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    model_validator,
)

from gate.config.schema import RunConfig, SloConfig, StatisticsConfig, Subset
from gate.errors import ErrorKind, Problem, RecordError

SCHEMA_VERSION = 1
RESULTS_SCHEMA_ID = "https://gate.invalid/schemas/results.schema.json"
_COMPLETE = "every_field"  # validation context key: reading requires every field present

Status = Literal["complete", "halted", "paused", "inconclusive"]
Verdict = Literal["pass", "regression", "inconclusive"]
Sha256 = str


class Record(BaseModel):
    """Base of every record: unknown fields are errors; reading needs every field present."""

    model_config = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True)

    @model_validator(mode="before")
    @classmethod
    def _every_field(cls, data: Any, info: ValidationInfo) -> Any:
        if isinstance(data, dict) and info.context and info.context.get(_COMPLETE):
            missing = [name for name in cls.model_fields if name not in data]
            if missing:
                raise ValueError(f"missing field(s): {', '.join(missing)}")
        return data

    def to_json(self) -> dict[str, Any]:
        """The JSON object written to disk (every field, defaults included)."""
        return self.model_dump(mode="json")


# --- trials.jsonl ------------------------------------------------------------------------


class TrialProviderError(Record):
    """Why a trial was lost to the provider (after all retries)."""

    kind: str  # an ErrorKind value (gate.providers.base)
    message: str  # short, secret-free


class TrialEnvironmentError(Record):
    """An exception raised by environment code during a trial: the harness's fault."""

    environment: str
    phase: str  # constructor | call | outcome | snapshot | check_fixture
    type: str  # the exception's class name
    message: str  # short (untrusted: rendered through neutralize)
    file: str | None  # the user's file where it was raised, when known
    line: int | None


class TrialScores(Record):
    """The scored fields of a trial (gate.agent.scoring), from its trace and the environment's
    end state. ``None`` when the trial was lost to the provider."""

    environment: str | None = None
    difficulty: str | None = None
    success: bool | None = None  # the environment's verdict on its end state
    reward: float | None = None  # in [0, 1]
    evidence_coverage: float | None = None  # share of the required evidence the agent saw
    invalid_actions: int | None = None
    invalid_by_kind: dict[str, int] | None = None
    wrong_fixes: int | None = None
    policy_violations: list[str] | None = None
    distractor_actions: int | None = None
    repeated_calls: int | None = None
    env_errors: int | None = None
    steps: int | None = None  # provider calls of the agent loop
    tool_calls: int | None = None
    tool_call_accuracy: float | None = None
    parseable_rate: float | None = None
    ended: str | None = None  # how the loop ended (final_answer, max_steps, ...)
    tokens_in: int | None = None
    tokens_out: int | None = None
    cost_usd: float | None = None  # computed cost of the trial's successful calls
    latency_s: float | None = None  # summed provider latency
    response_ids: list[str] = Field(default_factory=list)  # provider response ids used
    outcome_detail: dict[str, Any] | None = None  # the environment's own detail (free form)
    calls: list[dict[str, Any]] | None = None  # per tool call: step, call_id, tool, flags
    agent: dict[str, Any] | None = None  # an agent program's trial: what the program did
    truncations: int | None = None  # answers cut at max_tokens (finish_reason "length")
    refusals: list[str] | None = None  # the model's refusal texts (untrusted, cut short)


class ReusedFrom(Record):
    """Where a reused baseline trial comes from (gate.engine.reuse)."""

    run_id: str  # the run that paid for it
    ts: str  # when that run finished it
    trial_id: str | None = None  # its id in that run (this run gives it one of its own)


class Trial(TrialScores):
    """One finished trial (trials.jsonl): the checkpoint ``--resume`` continues from."""

    trial_id: str  # "<arm>/<task>/r<round>"
    arm: str
    model: str
    task: str
    round: int  # round (rounds schedule) or draw number (iid)
    seed: int  # the trial seed, the same for every arm of a unit
    ts: str  # ISO 8601 UTC, when the trial finished
    wall_s: float  # wall-clock duration of the trial
    # no_model_call: an agent program that never called the model (not scored, counted apart);
    # environment_error: the environment's own code raised (the harness's fault, counted apart)
    status: Literal["scored", "provider_error", "environment_error", "no_model_call"]
    provider_error: TrialProviderError | None = None  # set when status is provider_error
    environment_error: TrialEnvironmentError | None = None  # set when environment_error
    trace_id: str  # the trial's OpenTelemetry trace id (32 hex digits, from run and trial id)
    reused_from: ReusedFrom | None = None  # set when an earlier run paid for this trial
    transcript_sha256: Sha256 | None = None  # its Transcript's line in transcripts.jsonl.gz


# --- transcripts.jsonl.gz ----------------------------------------------------------------


class TranscriptStep(Record):
    """One model call: the messages it was sent (``messages[seen_from:seen_to]``) and the
    index of its answer in ``messages`` (None when no answer came back)."""

    step: int
    seen_from: int = Field(ge=0)
    seen_to: int = Field(ge=0)
    answer: int | None
    response_id: str | None
    finish_reason: str | None


class TranscriptTool(Record):
    """One tool call as executed: when it started and how long it took."""

    call_id: str
    tool: str
    step: int
    started: str  # ISO 8601 UTC
    duration_s: float = Field(ge=0)


class Transcript(Record):
    """What one trial's model saw and said (transcripts.jsonl.gz): every message once, in
    order (OpenAI chat format, redacted), which of them each model call saw, each tool call's
    timing, and the final answer. Capped at ``cap_bytes``: long strings are cut first, then
    messages in the middle become ``{"role": ..., "omitted": true}`` (``omitted_messages``),
    and as a last resort only the head stays (no messages, steps or tool calls); ``capped``
    says it happened."""

    trial_id: str
    arm: str
    task: str
    round: int
    instruction: str
    messages: list[dict[str, Any]]
    steps: list[TranscriptStep]
    tool_calls: list[TranscriptTool]
    final_answer: str | None
    cap_bytes: int = Field(ge=1)
    original_bytes: int = Field(ge=0)  # the transcript's size before the cap
    capped: bool
    omitted_messages: int = Field(ge=0)


# --- audit.jsonl -------------------------------------------------------------------------


class AuditLine(Record):
    """Either line of audit.jsonl: ``AuditStarted`` before a request leaves, ``AuditAttempt``
    when it ends. ``gate.rundir.audit.read_audit`` folds them into one attempt each."""


class AuditStarted(AuditLine):
    """Written (and flushed) the moment a request body goes out, before any answer."""

    phase: Literal["started"]
    attempt_id: str  # unique per attempt; the outcome line carries the same id
    ts: str
    arm: str
    model: str
    task: str
    round: int
    step: int
    attempt: int
    request_sha256: Sha256


class AuditAttempt(AuditLine):
    """One provider attempt (audit.jsonl), successful or not."""

    ts: str  # ISO 8601 UTC
    arm: str
    model: str
    task: str
    round: int
    step: int  # step of the agent loop
    attempt: int  # 1-based within one call
    request_sha256: Sha256  # of the request body
    outcome: str  # "ok" or an ErrorKind value
    http_status: int | None
    response_id: str | None  # the provider's response id ("gen-...")
    tokens_in: int
    tokens_out: int
    cost_reported_usd: float | None  # ``usage.cost`` when the provider reports it
    cost_computed_usd: float  # from the tokens and the price list
    latency_s: float
    error: str | None = None  # short, secret-free description of a failed attempt
    extra: dict[str, Any] = Field(default_factory=dict)  # e.g. {"cost_divergence": true}
    attempt_id: str | None = None  # the started line's id (None: a sink without two phases)
    finish_reason: str | None = None  # the choice's finish_reason ("stop", "length", ...)
    cached_tokens: int = 0  # prompt tokens the provider served from its cache
    reused_from: str | None = None  # run id: copied from the run that paid for it


# --- heartbeat.jsonl ---------------------------------------------------------------------


class Heartbeat(Record):
    """A periodic sign of life with the cost so far (heartbeat.jsonl)."""

    ts: str
    task: str | None = None  # the trial started last (None before the first)
    arm: str | None = None
    round: int | None = None
    calls: int  # provider attempts so far
    failed_attempts: int
    cost_usd: float  # computed cost so far
    trials_done: int
    notice: str | None = None  # the last provider notice (retry wait, cooldown, halt)


# --- manifest.json -----------------------------------------------------------------------


class ArmSpec(Record):
    """An arm: a model with the prompt set and tool set it runs with."""

    name: str  # "candidate", "baseline", "run", ...
    model: str
    provider: str
    prompts_tools: str  # "worktree", or "git:<sha>" for --baseline-ref


class PlannedScope(Record):
    """The declared scope, fixed before any call: every (arm, unit) cell the run may run."""

    schedule: Literal["rounds", "iid"]
    arms: list[str]
    tasks: list[str]
    max_rounds: int
    units: list[tuple[int, str, int]]  # (index, task, batch) of every planned unit
    cells: int  # len(arms) x len(units)


class BudgetSnapshot(Record):
    """The effective budget (gate.providers.budget)."""

    ceiling_usd: float
    configured_usd: float
    provider_remaining_usd: float | None  # the provider's balance when it reports one
    source: Literal["config", "provider_balance"]  # which of the two set the ceiling
    spent_usd: float
    configured_by: str | None = None  # "--budget-usd" or "gate.yaml" (sweeps)


class Continuation(Record):
    """One continuation of a sweep with a larger round limit (``--resume --max-rounds``)."""

    ts: str
    max_rounds_from: int = Field(ge=1)
    max_rounds_to: int = Field(ge=1)
    command: list[str]


class SharedBaseline(Record):
    """The baseline cache a run reuses trials from, as its records showed at the run's start
    (gate.engine.reuse; a merged sharded run: every shard's record together): the distinct
    candidates of the earlier sweeps in it that hold baseline trials this run may reuse
    (same ``baseline_key``, young enough), this run's candidate included."""

    candidates: list[Sha256]  # sha256 of each candidate arm (ArmSpec), sorted
    # those earlier sweeps (all shards and stages of one sweep count once; merged: the most
    # any one shard found)
    runs: int = Field(ge=0)


class Comparison(Record):
    """Which run of its comparison this is (gate.engine.ledger, ``gate sweep --ledger``)."""

    key: Sha256  # arms, configuration and file hashes
    number: int = Field(ge=1)  # 3: the 3rd run of this comparison
    previous: list[str]  # run ids of the earlier runs, oldest first
    forced: bool  # started with --force-restart over earlier runs


class Manifest(Record):
    """manifest.json: what the run is, what it hashed, and what it may run."""

    run_id: str
    kind: Literal["run", "sweep"]
    gate_version: str
    git_sha: str | None
    created: str  # ISO 8601 UTC
    command: list[str]  # argv after ``gate``
    config_path: str
    config_sha256: Sha256
    files_sha256: dict[str, Sha256]  # every prompt/tool/task/fixture file used
    arms: list[ArmSpec]
    scope: PlannedScope
    seed: int
    statistics: StatisticsConfig
    slos: SloConfig
    run: RunConfig
    budget: BudgetSnapshot
    continuations: list[Continuation] = Field(default_factory=list)
    baseline_key: Sha256 | None = None  # what a reused baseline trial must match (sweeps)
    # the random salt the iid plan was drawn from (sweeps); absent: drawn from str(seed)
    plan_salt: str | None = Field(default=None, pattern=r"^[0-9a-f]{1,64}$")
    comparison: Comparison | None = None  # with --ledger: the run's place in its comparison
    shared_baseline: SharedBaseline | None = None  # with --reuse-from: who shares the cache
    # provider config key -> its OpenTelemetry GenAI name, from its type and host ("openai")
    provider_names: dict[str, str] = Field(default_factory=dict)
    # provider config key -> gate's own chat-completions fields it leaves out of every call to
    # it, the provider declaring them unsupported (gate.providers.base.withheld_fields): "seed"
    # there means that provider's calls carry no seed (its trials are unseeded); only providers
    # with such a field are listed
    withheld_fields: dict[str, list[str]] = Field(default_factory=dict)
    subset: Subset | None = None  # --task/--env: the run covers only these tasks
    # a Python agent program's interpreter: name==version of each distribution, by where the
    # program is declared ("agent", "agent_overrides.ENV"); hashed into files_sha256 too
    agent_distributions: dict[str, list[str]] = Field(default_factory=dict)
    # the sequential test's bets that decide the run (gate.engine.decision.DECISION_METHOD)
    decision_method: int = Field(ge=1)


class EarlierVerdict(Record):
    """earlier-run.json: a sweep or merge the comparison ledger refused because an earlier run
    decided the comparison (gate.engine.ledger.EarlierRun); its report.md says so."""

    run_id: str  # the earlier run that decided
    out: str  # its run directory, as the ledger line holds it
    verdict: Literal["pass", "regression"]
    slos_met: bool | None  # that run's SLOs (a pass with a breach: exit 1)
    runs: int = Field(ge=1)  # runs of this comparison in the ledger
    arms: list[ArmSpec]  # the comparison's arms (those of the refused run)


# --- results.json / PARTIAL-RESULTS.json ------------------------------------------------


class ProviderErrors(Record):
    total: int = Field(ge=0)  # failed provider attempts
    by_kind: dict[ErrorKind, int]  # ErrorKind value -> failed attempts


class EnvironmentErrorExample(TrialEnvironmentError):
    trial_id: str


class EnvironmentErrors(Record):
    total: int = Field(ge=0)  # trials lost to an environment error (excluded from rates)
    examples: list[EnvironmentErrorExample]  # the first few


class TraceMetrics(Record):
    """Means and sums over the scored trials of an arm."""

    evidence_coverage: float | None
    tool_call_accuracy: float | None
    parseable_rate: float | None
    invalid_actions: int
    wrong_fixes: int
    distractor_actions: int
    repeated_calls: int
    policy_violations: int
    mean_steps: float | None
    tokens_in: int
    tokens_out: int


class ArmSummary(ArmSpec):
    """Per-arm figures. Provider errors are excluded from every success denominator."""

    trials: int = Field(ge=0)  # scored trials (provider-lost excluded)
    successes: int = Field(ge=0)
    success_rate: float | None = Field(ge=0, le=1)
    success_interval: tuple[float, float] | None  # Wilson 95%
    mean_reward: float | None = Field(ge=0, le=1)
    pass_k: dict[str, float | None]  # "k" -> pass^k estimate
    provider_errors: ProviderErrors
    trials_lost_to_provider: int = Field(ge=0)
    environment_errors: EnvironmentErrors
    trials_not_scored: dict[str, int]  # trial status (e.g. no_model_call) -> count
    attempts: int = Field(ge=0)
    response_ids: int = Field(ge=0)
    cost_usd: float = Field(ge=0)  # computed
    cost_reported_usd: float | None  # sum of ``usage.cost`` where reported
    cost_divergences: int = Field(ge=0)  # calls whose reported cost is > 5% off
    truncations: int = Field(ge=0)  # answers cut at max_tokens in scored trials
    refusals: int = Field(ge=0)  # refusals recorded in scored trials
    cost_per_success_usd: float | None
    p50_s: float | None
    p95_s: float | None
    metrics: TraceMetrics


class ScopeCounts(Record):
    done: int = Field(ge=0)
    lost_to_provider: int = Field(ge=0)
    environment_error: int = Field(ge=0)  # environment code raised (the harness's fault)
    not_scored: int = Field(ge=0)  # finished but not scored (e.g. no_model_call)
    not_needed: int = Field(ge=0)  # the test decided before this cell
    not_run: int = Field(ge=0)  # halted, paused, or stopped by the budget


class CellNotDone(Record):
    arm: str
    task: str
    round: int
    state: Literal["lost_to_provider", "environment_error", "not_scored", "not_needed",
                   "not_run"]
    reason: str


class ScopeAccounting(Record):
    """Every planned cell ends as done, lost to the provider, not needed, or not run."""

    planned: int = Field(ge=0)
    counts: ScopeCounts
    cells_not_done: list[CellNotDone]


class HaltRecord(Record):
    """Why the run stopped starting work. Before any task: task "-", round 0."""

    kind: Literal["circuit_breaker", "paused"]
    reason: str
    task: str
    round: int = Field(ge=0)


class RoundLog(Record):
    """One decision check of a sweep."""

    round: int  # the check number
    pairs: int
    verdict: str
    e_reject: float
    e_accept: float
    mean_diff: float | None


class Decision(Record):
    """The sweep's statistical decision, replayed from trials.jsonl."""

    verdict: Literal["regression", "no_regression", "continue", "inconclusive"]
    decided_round: int | None
    rounds: int = Field(ge=0)
    pairs: int = Field(ge=0)
    e_reject: float = Field(ge=0)
    e_accept: float = Field(ge=0)
    threshold_reject: float
    threshold_accept: float
    score: Literal["success", "reward"]
    fixed_sample_pairs: int = Field(ge=0)
    fixed_sample_sigma2: float
    fixed_sample_sigma2_source: str  # "observed" or "planning value"
    fixed_sample_rounds: float = Field(ge=0)
    rounds_log: list[RoundLog]
    stopped: str | None  # why the sweep ended undecided (the budget), else None


class SloCheck(Record):
    slo: str
    value: float | None  # the point figure on the decision's pairs (None: no data)
    limit: float
    ok: bool  # false only when breached
    direction: Literal[">=", "<="]
    # breached / met: the anytime bound clears the limit on that side; unmeasured: it does not
    status: Literal["met", "breached", "unmeasured"]
    # anytime-valid (lower, upper) bounds, each one-sided at the SLO's level (docs/statistics.md);
    # for p95_latency_s on the share of trials within the limit; None: no bound
    bounds: tuple[float, float] | None = None


class SloReport(Record):
    met: bool  # no SLO breached
    checks: list[SloCheck]
    breaches: list[str]
    unmeasured: list[str] = Field(default_factory=list)  # the data could not tell


class TaskArm(Record):
    """One arm's figures on one task."""

    trials: int  # scored
    successes: int
    mean_reward: float | None
    lost: int  # trials lost to the provider
    environment_errors: int  # trials lost to an environment error


class TaskRow(Record):
    task: str
    environment: str | None
    difficulty: str | None
    arms: dict[str, TaskArm]  # arm name -> figures
    pairs: int = Field(ge=0)  # units every arm scored: the paired trials the row rests on


class Evidence(Record):
    """The artifacts the results were derived from (rule 1: no claim without an artifact)."""

    audit_sha256: Sha256 | None
    trials_sha256: Sha256 | None
    manifest_sha256: Sha256 | None
    response_ids: int = Field(ge=0)  # audit lines with a provider response id
    attempts: int = Field(ge=0)  # audit lines


class ArmAccounting(Record):
    """Where one arm's lines of trials.jsonl went; the counts sum to the arm's lines, the
    three costs to the arm's audit cost."""

    trials_on_disk: int = Field(ge=0)
    used_by_decision: int = Field(ge=0)  # scored, in a pair the decision used
    lost_to_provider: int = Field(ge=0)  # within the decision's span
    environment_errors: int = Field(ge=0)  # within the decision's span
    not_scored: int = Field(ge=0)  # within the span, e.g. no_model_call
    unpaired: int = Field(ge=0)  # scored, but the other arm's trial of the unit was not
    after_decision: int = Field(ge=0)  # beyond the last pair the decision used
    outside_plan: int = Field(ge=0)  # a trial id not in the manifest's units
    cost_decision_usd: float = Field(ge=0)
    cost_after_decision_usd: float = Field(ge=0)
    cost_other_usd: float = Field(ge=0)  # outside the plan, or calls without a trial line


class Accounting(Record):
    """Every trial of a sweep: used by the decision, or run after it (why, what it cost)."""

    decision_pairs: int = Field(ge=0)
    after_decision_trials: int = Field(ge=0)
    after_decision_cost_usd: float = Field(ge=0)
    after_decision_why: str | None  # gate's own text: the pass^k top-up, the batch, ...
    arms: dict[str, ArmAccounting]


class TaskFigures(Record):
    successes: int = Field(ge=0)
    trials: int = Field(ge=1)  # scored


class RegressedTask(Record):
    """A task whose candidate success rate is below the baseline's."""

    task: str
    candidate: TaskFigures
    baseline: TaskFigures
    difference: float = Field(ge=-1, lt=0)  # candidate minus baseline success rate
    reasons: dict[str, int]  # failure reason -> the candidate's failed trials showing it
    example_trial: str | None  # one failed candidate trial (its calls are the excerpt)


class ReuseRun(Record):
    run_id: str
    trials: int = Field(ge=1)
    first_ts: str
    last_ts: str


class ReusedTrial(Record):
    trial_id: str
    run_id: str
    ts: str
    response_ids: list[str]


class ReuseFacts(Record):
    """Baseline trials reused from earlier runs (``--reuse-from``)."""

    trials: int = Field(ge=1)
    cost_saved_usd: float = Field(ge=0)  # what they cost the runs that paid for them
    runs: list[ReuseRun]
    entries: list[ReusedTrial]


class Results(Record):
    """results.json: a pure function of the manifest, trials.jsonl and audit.jsonl."""

    schema_version: Literal[1] = 1  # SCHEMA_VERSION
    run_id: str
    kind: Literal["run", "sweep"]
    status: Status
    status_reasons: list[str]
    verdict: Verdict | None
    halt: HaltRecord | None
    scope: ScopeAccounting
    arms: dict[str, ArmSummary]
    decision: Decision | None
    slos: SloReport | None
    tasks: list[TaskRow]
    evidence: Evidence
    accounting: Accounting | None = None  # sweeps: every trial line, decision or after it
    regressed_tasks: list[RegressedTask] = Field(default_factory=list)  # worst first
    continuations: list[Continuation] = Field(default_factory=list)
    reuse: ReuseFacts | None = None
    subset: Subset | None = None  # the manifest's: a result on part of the suite only


class PartialResults(Results):
    """PARTIAL-RESULTS.json: results of a halted or paused run, saying what is missing."""

    missing: str


# --- smoke.json --------------------------------------------------------------------------


class SmokeCheck(Record):
    name: str
    ok: bool
    detail: str


class SmokeScore(Record):
    success: bool | None
    reward: float | None


class SmokeTask(Record):
    task: str
    expert: SmokeScore | None = None
    random: SmokeScore | None = None


class Smoke(Record):
    """smoke.json: the preflight drill and the config and file hashes it vouches for."""

    ok: bool
    checks: list[SmokeCheck]
    tasks: list[SmokeTask]
    config_sha256: Sha256
    files_sha256: dict[str, Sha256]
    seconds: float
    subset: Subset | None = None  # a smoke of part of the suite vouches for that part only


# --- stop.json, shard.json, stages.json --------------------------------------------------


class Stop(Record):
    """stop.json: why the run stopped, written before its results, so that the results are
    derived from the run directory alone (``gate verify`` never takes them from results.json)."""

    halt: HaltRecord | None  # the circuit breaker or the pause file
    stopped: str | None  # why a sweep ended undecided (budget, last stage), else None


class ShardSpecRecord(Record):
    index: int = Field(ge=1)
    count: int = Field(ge=1)
    stage: int = Field(ge=1)
    stages: int = Field(ge=1)


class ShardInfo(Record):
    """shard.json: the shard's spec, and its outcome once it has run (``trials`` set)."""

    spec: ShardSpecRecord
    units: int | None = None
    trials: int | None = None
    spent_usd: float | None = None
    budget_usd: float | None = None
    halt: HaltRecord | None = None


class StageRun(Record):
    stage: int = Field(ge=1)
    shards: int = Field(ge=1)
    trials: int = Field(ge=0)
    spent_usd: float


class Stages(Record):
    """stages.json of a merged sharded sweep: the stages merged so far and the next one."""

    max: int = Field(ge=1)
    run: list[StageRun]
    next_stage: int | None
    ceiling_usd: float
    spent_usd: float


# --- reading and writing -----------------------------------------------------------------

R = TypeVar("R", bound=Record)


def _problems(exc: ValidationError, path: str, line: int | None) -> list[Problem]:
    out = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(part) for part in err["loc"])
        if err["type"] == "extra_forbidden":
            message = f"unknown field {loc!r}"
        elif err["type"] == "missing":
            message = f"missing field {loc!r}"
        else:
            msg = str(err["msg"]).removeprefix("Value error, ")
            message = f"{loc}: {msg}" if loc else msg
        out.append(Problem(path, line, message))
    return out


def parse_record(model: type[R], data: Any, path: str, line: int | None = None) -> R:
    """Validate a decoded JSON value as ``model``; every field must be present."""
    try:
        return model.model_validate(data, context={_COMPLETE: True})
    except ValidationError as exc:
        raise RecordError(_problems(exc, path, line)) from None


def read_record(path: Path, model: type[R]) -> R:
    """Read and validate a JSON record file (manifest.json, results.json, smoke.json)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RecordError.one(str(path), None, "missing") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RecordError.one(str(path), None, f"cannot read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise RecordError.one(str(path), exc.lineno, f"not JSON: {exc.msg}") from None
    return parse_record(model, data, str(path))


def write_record(path: Path, record: Record) -> None:
    """Atomic write: a crash leaves the old file or the new one, never half of one."""
    tmp = path.with_name(path.name + ".tmp")
    text = json.dumps(record.to_json(), indent=2, sort_keys=True, allow_nan=False)
    tmp.write_text(text + "\n", encoding="utf-8")
    os.replace(tmp, path)


def results_json_schema() -> dict[str, Any]:
    """The JSON Schema of results.json and PARTIAL-RESULTS.json, generated from the models."""
    schema = TypeAdapter(Results | PartialResults).json_schema(mode="serialization")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": RESULTS_SCHEMA_ID,
        "title": "gate results.json / PARTIAL-RESULTS.json",
        "description": "Results of a gate run or sweep. Every figure is re-derivable from "
                       "trials.jsonl, audit.jsonl and manifest.json with `gate verify`. "
                       "Generated from gate.records: python -m gate.records --schema",
        **schema,
    }


def schema_text() -> str:
    """The shipped file's exact text."""
    return json.dumps(results_json_schema(), indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args != ["--schema"]:
        print("usage: python -m gate.records --schema", file=sys.stderr)
        return 4
    sys.stdout.write(schema_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
