"""The verdict a reviewer reads first: one word per verdict, its GitHub alert, its consequence
for the merge, and the decision in plain words with its error bound.

Every place that names a verdict (the report's alert, the summary table of a multi-sweep
comment, the console line of ``gate sweep``) takes the word from :func:`verdict_of`, so the
product says one thing for one outcome:

=============  ===========  ==========================================================
word           alert        when
=============  ===========  ==========================================================
Regression     CAUTION      the sequential test found the candidate worse
SLO breach     CAUTION      no regression found, but an SLO of the candidate is not met
Pass           TIP          no regression and every SLO met
Inconclusive   WARNING      neither error bound reached (round limit, budget, losses)
Halted         WARNING      the circuit breaker stopped the sweep
Paused         WARNING      the pause file stopped the sweep
Screening run  NOTE         ``gate run``: one model, no comparison, no verdict
=============  ===========  ==========================================================

A sweep refused by the comparison ledger because an earlier run decided the same comparison
(gate.report.states.earlier_run_report) says that run's word (Pass, SLO breach, Regression),
as its exit code is that run's. The PR comment's states without a sweep report
(gate.report.states) take their words from the same small set:

===============  =======  ==============================================================
word             alert    when
===============  =======  ==============================================================
Evaluating       NOTE     the gate run started; replaced by its result
No sweep needed  TIP      nothing in the PR requires a sweep and the smoke test passed
Smoke failed     CAUTION  the smoke test failed, so no sweep ran
Not evaluated    WARNING  a fork or draft PR, or a run waiting for a maintainer's approval
No result        WARNING  the run ended without a report (cancelled, timed out, failed)
===============  =======  ==============================================================
"""

from __future__ import annotations

from dataclasses import dataclass

from markupsafe import Markup

from gate.records import Manifest, Results

CHECK = "gate"  # the required status check the workflow publishes (docs/github.md)


@dataclass(frozen=True)
class Verdict:
    word: str
    alert: str  # GitHub alert type: CAUTION, WARNING, TIP, NOTE
    action: str  # what to do with the PR, in a few words
    check: Markup  # what happened to the required check ("" outside a sweep)


def _check(outcome: str) -> Markup:
    return Markup(f"required check `{CHECK}` {outcome}")


def verdict_of(results: Results) -> Verdict:
    if results.status in ("halted", "paused"):
        return Verdict(results.status.capitalize(), "WARNING", "not decided, the sweep stopped",
                       _check("failed"))
    if results.kind != "sweep":
        return Verdict("Screening run", "NOTE", "one model, no comparison, no verdict",
                       Markup(""))
    if results.verdict in ("regression", "pass"):
        return decided(results.verdict, None if results.slos is None else results.slos.met)
    return Verdict("Inconclusive", "WARNING", "not decided yet", _check("failed"))


def decided(verdict: str, slos_met: bool | None) -> Verdict:
    """A decided sweep's verdict (``regression`` or ``pass``) with its SLOs: also the word of
    a comparison the ledger holds as decided by an earlier run (gate.report.states)."""
    if verdict == "regression":
        return Verdict("Regression", "CAUTION", "do not merge", _check("failed"))
    if slos_met is not True:  # a pass with no SLO figures fails closed, as its exit code does
        return Verdict("SLO breach", "CAUTION", "do not merge", _check("failed"))
    return Verdict("Pass", "TIP", "no regression found", _check("passed"))


def decision_words(results: Results, manifest: Manifest) -> str:
    """The decision in plain words with the error bound that holds for it (gate's own text)."""
    d = results.decision
    if d is None:
        return ""
    stats = manifest.statistics
    pairs = f"{d.pairs} paired trial{'s' if d.pairs != 1 else ''}"
    if results.verdict == "regression":
        return (f"Decided after {pairs} (e-value {d.e_reject:.3g} ≥ {d.threshold_reject:.3g}: "
                f"blocking a candidate that is not worse has at most a {_share(stats.beta)} "
                "chance).")
    if results.verdict == "pass":
        return (f"Decided after {pairs} (e-value {d.e_accept:.3g} ≥ {d.threshold_accept:.3g}: "
                f"passing a candidate {100 * stats.delta:.0f} pp or more worse has at most a "
                f"{_share(stats.alpha)} chance).")
    return (f"Neither bound reached after {pairs}: regression e-value {d.e_reject:.3g} "
            f"(needs {d.threshold_reject:.3g}), no-regression e-value {d.e_accept:.3g} "
            f"(needs {d.threshold_accept:.3g}).")


def _share(p: float) -> str:
    return f"{100 * p:.3g}%"
