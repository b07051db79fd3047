"""Strict pydantic models of every input file. Unknown keys are errors (``extra="forbid"``)."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

EvaluationStatus = Literal[
    "pending-evaluation",
    "in-progress",
    "pending-human-review",
    "adopted",
    "rejected",
    "rejected-inconclusive",
]
Difficulty = Literal["easy", "medium", "hard"]

_ID = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


# --- gate.yaml ---------------------------------------------------------------------------


class RetryPolicy(Strict):
    """How failed provider attempts are retried (retryable kinds only)."""

    max_attempts: int = Field(5, ge=1, le=20, description="attempts per call, first included")
    initial_wait_s: float = Field(1.0, ge=0, description="first backoff wait")
    max_wait_s: float = Field(60.0, ge=0, description="cap on any single wait, Retry-After too")
    jitter_s: float = Field(1.0, ge=0, description="random extra wait, uniform in [0, jitter_s]")
    cooldown_after: int = Field(3, ge=1, description="consecutive failures before a cooldown")
    cooldown_s: float = Field(60.0, ge=0, description="provider-wide pause after that many")
    max_consecutive_timeouts: int = Field(
        5, ge=1, description="timeouts in a row, provider-wide, that halt the run (silence)")


class RateLimit(Strict):
    """Declared provider limit, shared by all concurrent trials."""

    min_interval_s: float = Field(0.0, ge=0, description="minimum time between two calls")
    requests: int | None = Field(None, ge=1, description="at most this many calls ...")
    per_s: float | None = Field(None, gt=0, description="... in any window of this many seconds")

    @model_validator(mode="after")
    def _pair(self) -> RateLimit:
        if (self.requests is None) != (self.per_s is None):
            raise ValueError("rate_limit.requests and rate_limit.per_s go together")
        return self


class Price(Strict):
    """USD per token (prompt, completion) and per request; ``cache_read``: USD per prompt token
    served from the provider's cache (None: cached tokens cost the full prompt price)."""

    prompt: float = Field(ge=0)
    completion: float = Field(ge=0)
    request: float = Field(0.0, ge=0)
    cache_read: float | None = Field(None, ge=0)


FaultKind = Literal["429", "500", "502", "503", "error_in_body", "malformed_json", "stall", "402"]
DEFAULT_FAULTS: tuple[FaultKind, ...] = (
    "429", "500", "502", "503", "error_in_body", "malformed_json", "stall")


class FaultConfig(Strict):
    """Fault injection for the built-in mock server (each rate is a probability per call)."""

    rate: float = Field(0.0, ge=0, le=1, description="share of calls that get a fault")
    kinds: list[FaultKind] = Field(default_factory=lambda: list(DEFAULT_FAULTS))
    payment_required_after: int | None = Field(None, ge=0, description="402 after N calls")
    log: str | None = Field(None, description="JSONL file of every request and fault injected")


class UnsupportedFields(Strict):
    """Request fields a provider refuses, per API: an agent program's request naming one is
    refused first, as that provider would refuse it (HTTP 400, ``unsupported_parameter``), and
    nothing is sent. Of gate's own chat-completions fields, those it can do without (the seed,
    the temperature...) are left out of its calls, and ``gate validate`` refuses the others
    (gate.providers.base: ``WITHHOLDABLE``, ``REQUIRED_FIELDS``, ``LOOP_FIELDS``)."""

    chat_completions: list[str] = Field(
        default_factory=list, description="fields of POST /chat/completions (e.g. top_p)")
    responses: list[str] = Field(
        default_factory=list, description="fields of POST /responses (e.g. reasoning)")


class ProviderConfig(Strict):
    type: Literal["openai", "mock"] = "openai"
    base_url: str | None = Field(None, description="OpenAI-compatible base URL (…/v1)")
    api_key_env: str | None = Field(None, description="environment variable holding the key")
    api_key_header: str = Field(
        "Authorization", pattern=r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$",
        description="header carrying the key: Authorization (as 'Bearer KEY'), or another "
        "name such as api-key (Azure OpenAI) that carries the bare key")
    pricing: Literal["live", "table"] = "live"
    prices: dict[str, Price] = Field(default_factory=dict, description="for pricing: table")
    rate_limit: RateLimit = Field(default_factory=RateLimit)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    timeout_s: float = Field(120.0, gt=0)
    max_response_bytes: int = Field(
        8 * 1024 * 1024, ge=1024,
        description="bodies longer than this are not read: a response_too_large error")
    concurrency: int = Field(4, ge=1, le=256)
    faults: FaultConfig | None = Field(None, description="mock provider only")
    responses_api: bool = Field(
        False, description="the provider serves POST /responses: an agent program's Responses "
        "calls are forwarded to it as they are (else translated to chat completions)")
    unsupported_fields: UnsupportedFields = Field(default_factory=UnsupportedFields)

    @model_validator(mode="after")
    def _check(self) -> ProviderConfig:
        if self.type == "openai":
            if not self.base_url:
                raise ValueError("an openai-type provider needs base_url")
            if not self.api_key_env:
                raise ValueError("an openai-type provider needs api_key_env")
        if self.faults is not None and self.type != "mock":
            raise ValueError("faults can only be injected into the mock provider")
        if self.responses_api and self.type == "mock":
            raise ValueError("responses_api: the mock provider speaks chat completions only")
        return self


class SuiteConfig(Strict):
    tasks_dir: str = "tasks"
    fixtures_dir: str = "fixtures"
    prompts_dir: str = "prompts"
    tools_dir: str = "tools"
    registry: str = "models.yaml"


class StatisticsConfig(Strict):
    """Sequential paired test (two one-sided betting e-processes); see docs/statistics.md."""

    delta: float = Field(0.10, gt=0, lt=1, description="non-inferiority margin")
    alpha: float = Field(0.05, gt=0, lt=0.5, description="P(ship | true diff <= -delta)")
    beta: float = Field(0.05, gt=0, lt=0.5, description="P(block | true diff >= 0)")
    lam: float = Field(0.3, ge=0.01, lt=1, description="betting fraction (the first and, "
                       "without plug_in, every bet; below 0.01 the prior's arithmetic fails)")
    max_rounds: int = Field(16, ge=1, le=1000, description="round limit (about 2n/T)")
    score: Literal["success", "reward"] = Field(
        "success", description="paired score: 0/1 success, or partial-credit reward in [0,1]")
    plug_in: bool = Field(True, description="predictable plug-in bet (else the fixed lam)")
    schedule: Literal["rounds", "iid"] = Field(
        "iid", description="iid: tasks drawn at random, the decision checked after every pair; "
        "rounds: every task each round, checked at round ends")
    batch: int = Field(4, ge=1, description="iid: paired units run at once between two reads "
                       "of the decision (the decision itself is checked after every pair)")
    pass_k_top_up: bool = Field(
        False, description="rounds: after a no-regression decision taken before round k, run "
        "rounds until every task has k trials so the pass^k SLO can be measured (paid spend "
        "after the decision; off: an unmeasurable pass^k SLO is reported as unmeasured)")

    @field_validator("lam")
    @classmethod
    def _lam_within_cap(cls, lam: float, info: ValidationInfo) -> float:
        """The first bet may not pass the cap every bet is clipped to (docs/statistics.md)."""
        delta = info.data.get("delta")
        cap = None if not isinstance(delta, float) else min(0.75, 0.9 / (1.0 + delta))
        if cap is not None and lam > cap:  # gate.statistics.lam_cap (a sibling layer)
            raise ValueError(f"lam {lam:g} is above the bet cap min(0.75, 0.9 / (1 + delta)) = "
                             f"{cap:.4g} for delta {delta:g}")
        return lam


class BudgetConfig(Strict):
    ceiling_usd: float = Field(5.0, ge=0, description="hard ceiling of one run")


class PassKSlo(Strict):
    k: int = Field(2, ge=1)
    min: float = Field(ge=0, le=1)


class SloConfig(Strict):
    """Task SLOs, evaluated on the candidate arm. ``None`` means not checked."""

    success_rate_min: float | None = Field(None, ge=0, le=1)
    pass_k: PassKSlo | None = None
    p95_latency_s_max: float | None = Field(None, gt=0)
    cost_per_success_usd_max: float | None = Field(None, ge=0)
    provider_error_share_max: float | None = Field(0.2, ge=0, le=1)


class RunConfig(Strict):
    seed: int = 1234
    max_tokens: int = Field(1024, ge=1)
    temperature: float = Field(0.0, ge=0, le=2)
    heartbeat_interval_s: float = Field(300.0, gt=0)
    lost_share_inconclusive: float = Field(0.2, ge=0, le=1, description="share of lost trials")
    concurrency: int = Field(8, ge=1, le=256, description="trials running at once")


class AgentProgram(Strict):
    """A team's own agent program, run once per trial (see gate.agent.program)."""

    command: list[str] = Field(min_length=1, description="argv, run in the repository root")
    timeout_s: float = Field(600.0, gt=0, le=86400, description="wall time of one trial")
    mode: Literal["per_trial", "persistent"] = Field(
        "per_trial", description="per_trial: started for each trial; persistent: started once "
        "per arm, trials as JSON lines on stdin (see gate.agent.persistent)")
    env: dict[str, str] = Field(
        default_factory=dict, description="constant variables for the program "
        "(e.g. OPENAI_AGENTS_DISABLE_TRACING: '1'); never the trial's own variables")
    pass_env: list[str] = Field(
        default_factory=list, description="names of variables of gate's own environment passed "
        "to the program when set (never a provider's api_key_env)")
    files: list[str] = Field(
        default_factory=list, description="more repository files hashed with the command into "
        "the manifest (the agent's lock file, its modules)")

    @field_validator("command")
    @classmethod
    def _argv(cls, v: list[str]) -> list[str]:
        if any(not arg for arg in v):
            raise ValueError("command: every argument must be a non-empty string")
        return v

    @field_validator("env", "pass_env")
    @classmethod
    def _not_the_trials(cls, v: Any) -> Any:
        names = list(v)
        taken = sorted(n for n in names if n in TRIAL_VARIABLES or n.startswith("GATE_"))
        if taken:
            raise ValueError(f"the trial sets these itself: {taken}")
        bad = sorted(n for n in names if not _ENV_NAME.fullmatch(n))
        if bad:
            raise ValueError(f"not variable names: {bad}")
        return v


TRIAL_VARIABLES = frozenset({"OPENAI_BASE_URL", "OPENAI_API_KEY"})
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


AgentChoice = Literal["builtin"] | AgentProgram


class GateConfig(Strict):
    version: Literal[1] = 1
    suite: SuiteConfig = Field(default_factory=SuiteConfig)
    providers: dict[str, ProviderConfig]
    statistics: StatisticsConfig = Field(default_factory=StatisticsConfig)
    budget: BudgetConfig = Field(default_factory=BudgetConfig)
    slos: SloConfig = Field(default_factory=SloConfig)
    run: RunConfig = Field(default_factory=RunConfig)
    environments: dict[str, str] = Field(
        default_factory=dict,
        description='a repository\'s own environments: {NAME: "package.module:ClassName"}, '
                    "imported with the directory holding gate.yaml first on sys.path")
    agent: AgentChoice = Field("builtin", description="builtin loop, or {command, timeout_s}")
    agent_overrides: dict[str, AgentChoice] = Field(
        default_factory=dict, description="environment name -> its own agent choice")

    @field_validator("providers")
    @classmethod
    def _names(cls, v: dict[str, ProviderConfig]) -> dict[str, ProviderConfig]:
        for name in v:
            if not _ID.match(name):
                raise ValueError(f"provider name {name!r} must match {_ID.pattern}")
        return v


# --- models.yaml -------------------------------------------------------------------------


class ModelEntry(Strict):
    id: str = Field(min_length=1, description="exact provider model id (no fuzzy matching)")
    provider: str
    evaluation_status: EvaluationStatus
    notes: str | None = None
    last_run: str | None = Field(None, description="run id recorded by the status writer")


class Registry(Strict):
    models: list[ModelEntry]

    @model_validator(mode="after")
    def _unique(self) -> Registry:
        seen: dict[str, int] = {}
        for i, m in enumerate(self.models):
            if m.id in seen:  # reported at the second entry (``at``: see validation_problems)
                raise PydanticCustomError(
                    "duplicate_model_id", "model id {id} appears twice (first at models[{first}])",
                    {"id": repr(m.id), "first": seen[m.id], "at": ("models", i, "id")})
            seen[m.id] = i
        return self


# --- tools/, tasks/, fixtures/ -----------------------------------------------------------


class ToolDef(Strict):
    """A tool shown to the model: OpenAI function format."""

    name: str = Field(pattern=r"^[a-zA-Z_][a-zA-Z0-9_]{0,63}$")
    description: str = Field(min_length=1)
    parameters: dict[str, Any] = Field(description="JSON Schema of the arguments (object)")


class ToolCall(Strict):
    tool: str
    args: dict[str, Any] = Field(default_factory=dict)


class Fixture(Strict):
    """An environment's initial state, what a good agent must look at, and what it must achieve.

    ``initial_state`` and ``expected`` are validated by the environment's own models.
    """

    initial_state: dict[str, Any]
    required_evidence: list[ToolCall] = Field(min_length=1)
    expected: dict[str, Any]
    distractors: list[ToolCall] = Field(default_factory=list)
    reference_trajectory: list[ToolCall] = Field(min_length=1)
    reference_output: str

    @field_validator("reference_output")
    @classmethod
    def _non_empty(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("reference_output is empty")
        return v


class Task(Strict):
    id: str = Field(pattern=_ID.pattern)
    environment: str
    difficulty: Difficulty
    title: str = Field(min_length=1)
    instruction: str = Field(min_length=1, description="the user message that starts the trial")
    fixture: str = Field(description="path relative to the fixtures directory")
    step_limit: int = Field(ge=1, le=100)
    tags: list[str] = Field(default_factory=list)


class Subset(Strict):
    """A run over part of the suite (``--task``/``--env``), recorded so that it is never read as
    a result on the whole suite."""

    task_patterns: list[str]  # --task values, shell-style globs
    environments: list[str]  # --env values
    tasks: list[str]  # the task ids selected, in suite order
    suite_tasks: int  # tasks in the whole suite

    def describe(self) -> str:
        flags = [f"--task {p}" for p in self.task_patterns]
        flags += [f"--env {e}" for e in self.environments]
        return (f"a subset: {len(self.tasks)} of {self.suite_tasks} tasks "
                f"({', '.join(flags)})")
