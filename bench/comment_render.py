"""The PR comment as a reviewer sees it: rendered like GitHub, measured in headless Chromium.

Runs the demo's regression sweep (mock/expert@0.8 against mock/expert), plans its comment as
``gate comment`` does, renders it with cmark-gfm (GitHub's own markdown library, ``cmarkgfm``),
turns ``> [!CAUTION]`` blockquotes into alerts as GitHub does, lays it out in a 900 px column
with GitHub-like CSS (14 px system font, the comment box's 16 px padding; Primer's colours of
the light and the dark theme), and asks headless Chromium, for each theme, where the verdict,
the consequence and the difference end (-1: not in the text), the lowest WCAG contrast ratio
of any text against what is behind it (4.5 is the AA floor for body text), and how many images
and inline colours the body has (either could assume a white page). The same for the
comment's states without a sweep report (evaluating; a cancelled run). Also prints the
comment's length at 40, 400 and 1,000 tasks and with three sweeps of 1,000 tasks.

    python bench/comment_render.py [--out DIR] [--screenshot] [--theme light|dark ...]

Needs ``chromium`` on PATH (Debian: ``apt-get install chromium``) for the pixel figures; the
length figures need nothing else.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "support"))

from comment_cases import comment, demo_regression, grown
from comment_cases import html as gfm_html

from gate.github.comment import utf16_len
from gate.report.blocks import parse_report
from gate.report.neutralize import neutralize
from gate.report.plan import Where, plan_comment
from gate.report.states import evaluating_report, no_report

# GitHub's Primer colours for a comment, light and dark ("dark default"): page, text, borders,
# the header and striped rows, muted text, links, code background, and each alert's border
# and title.
THEMES: dict[str, dict[str, str]] = {
    "light": {"bg": "#ffffff", "fg": "#1f2328", "border": "#d1d9e0", "subtle": "#f6f8fa",
              "muted": "#59636e", "link": "#0969da", "code": "rgba(129,139,152,.12)",
              "note": "#0969da", "tip": "#1a7f37", "warning": "#9a6700", "caution": "#d1242f",
              "scheme": "light"},
    "dark": {"bg": "#0d1117", "fg": "#f0f6fc", "border": "#3d444d", "subtle": "#151b23",
             "muted": "#9198a1", "link": "#4493f8", "code": "rgba(101,108,118,.2)",
             "note": "#4493f8", "tip": "#3fb950", "warning": "#d29922", "caution": "#f85149",
             "scheme": "dark"},
}

CSS = """
:root { color-scheme: %(scheme)s; }
body { margin: 0; background: %(bg)s; color: %(fg)s; font-family: -apple-system,
  BlinkMacSystemFont, "Segoe UI", "Noto Sans", Helvetica, Arial, sans-serif; font-size: 14px;
  line-height: 1.5; }
.comment { width: 900px; box-sizing: border-box; border: 1px solid %(border)s;
  border-radius: 6px; margin: 0; }
.header { background: %(subtle)s; border-bottom: 1px solid %(border)s; padding: 8px 16px;
  height: 24px; }
.body { padding: 16px; }
.body > *:first-child { margin-top: 0 !important; }
p, blockquote, ul, table, details { margin: 0 0 16px; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 85%%;
  background: %(code)s; padding: .2em .4em; border-radius: 6px; }
table { border-collapse: collapse; display: block; max-width: 100%%; overflow: auto; }
td, th { border: 1px solid %(border)s; padding: 6px 13px; }
tr { background: %(bg)s; }
tr:nth-child(2n) { background: %(subtle)s; }
.markdown-alert { padding: 8px 16px; border-left: .25em solid; margin-bottom: 16px; }
.markdown-alert-caution { border-color: %(caution)s; }
.markdown-alert-warning { border-color: %(warning)s; }
.markdown-alert-tip { border-color: %(tip)s; } .markdown-alert-note { border-color: %(note)s; }
.markdown-alert-title { font-weight: 500; margin-bottom: 4px; }
.markdown-alert-caution .markdown-alert-title { color: %(caution)s; }
.markdown-alert-warning .markdown-alert-title { color: %(warning)s; }
.markdown-alert-tip .markdown-alert-title { color: %(tip)s; }
.markdown-alert-note .markdown-alert-title { color: %(note)s; }
.markdown-alert > p:last-child { margin-bottom: 0; }
sub { font-size: 12px; color: %(muted)s; }
a { color: %(link)s; text-decoration: none; }
"""

SCRIPT = """
<script>
function bottom(re) {
  const box = document.querySelector('.comment');
  const walker = document.createTreeWalker(box, NodeFilter.SHOW_TEXT);
  const top = document.querySelector('.comment').getBoundingClientRect().top;
  let node;
  while ((node = walker.nextNode())) {
    const i = node.data.search(re);
    if (i >= 0) {
      const range = document.createRange();
      range.setStart(node, i); range.setEnd(node, i + node.data.match(re)[0].length);
      const r = range.getBoundingClientRect();
      return Math.round(r.bottom - top);
    }
  }
  return -1;
}
function rgb(text) {
  const m = text.match(/[\\d.]+/g).map(Number);
  return {r: m[0], g: m[1], b: m[2], a: m.length > 3 ? m[3] : 1};
}
function luminance(c) {
  const f = v => {
    v /= 255;
    return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
  };
  return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b);
}
function background(el) {
  // the first opaque background up the tree, blending translucent ones over it
  const layers = [];
  for (let e = el; e; e = e.parentElement) {
    const c = rgb(getComputedStyle(e).backgroundColor);
    if (c.a > 0) layers.push(c);
    if (c.a >= 1) break;
  }
  let out = layers.length && layers[layers.length - 1].a >= 1 ? layers.pop()
    : rgb(getComputedStyle(document.body).backgroundColor);
  while (layers.length) {
    const c = layers.pop();
    out = {r: c.r * c.a + out.r * (1 - c.a), g: c.g * c.a + out.g * (1 - c.a),
           b: c.b * c.a + out.b * (1 - c.a), a: 1};
  }
  return out;
}
function minContrast(box) {
  // WCAG contrast of every element that holds text, against what is behind it
  let worst = 99;
  for (const el of box.querySelectorAll('*')) {
    if (![...el.childNodes].some(n => n.nodeType === 3 && n.data.trim())) continue;
    const fg = luminance(rgb(getComputedStyle(el).color)), bg = luminance(background(el));
    const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
    worst = Math.min(worst, Math.round(ratio * 100) / 100);
  }
  return worst;
}
window.onload = () => {
  const box = document.querySelector('.comment');
  const out = {verdict: bottom(new RegExp(VERDICT)), consequence: bottom(/\\(required check/),
    difference: bottom(/\\u2212\\d+ pp/), height: Math.round(box.getBoundingClientRect().height),
    min_contrast: minContrast(box),
    images: box.querySelectorAll('img, svg, picture').length,
    inline_colours: box.querySelectorAll('.body [style], .body font').length};
  document.title = 'M ' + JSON.stringify(out);
  document.getElementById('m').textContent = JSON.stringify(out);
};
</script>
"""


def alerts_as_github(body_html: str) -> str:
    """GitHub's alert filter: ``<blockquote><p>[!TYPE]`` becomes a titled alert block."""
    def repl(m: re.Match[str]) -> str:
        kind = m.group(1).lower()
        return (f'<div class="markdown-alert markdown-alert-{kind}"><p class="markdown-alert-'
                f'title">{kind.capitalize()}</p><p>')
    out = re.sub(r"<blockquote>\s*<p>\[!(CAUTION|WARNING|TIP|NOTE)\]\s*", repl, body_html)
    # close each converted alert where its blockquote closed
    parts = out.split('<div class="markdown-alert')
    fixed = [parts[0]] + [p.replace("</blockquote>", "</div>", 1) for p in parts[1:]]
    return '<div class="markdown-alert'.join(fixed)


def page(body: str, theme: str = "light", verdict: str = "Regression: do not merge") -> str:
    inner = alerts_as_github(gfm_html(body))
    css = CSS % THEMES[theme]
    script = SCRIPT.replace("VERDICT", json.dumps(verdict))
    return (f"<!doctype html><html><head><meta charset='utf-8'><style>{css}</style></head>"
            f"<body><div class='comment'><div class='header'><b>github-actions</b> commented"
            f"</div><div class='body'>{inner}</div></div><pre id='m'></pre>{script}"
            "</body></html>")


def chromium(url: Path, profile: Path, *extra: str) -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        return ""
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run",
           f"--user-data-dir={profile}", "--window-size=960,1400", *extra, url.as_uri()]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    return done.stdout


def measure(body: str, out: Path, screenshot: bool, theme: str, name: str = "comment",
            verdict: str = "Regression: do not merge") -> str:
    path = out / f"{name}-{theme}.html"
    path.write_text(page(body, theme, verdict), encoding="utf-8")
    with tempfile.TemporaryDirectory() as profile:
        dom = chromium(path, Path(profile), "--virtual-time-budget=3000", "--dump-dom")
    found = re.search(r"<pre id=\"m\">(.*?)</pre>", dom)
    if screenshot:
        with tempfile.TemporaryDirectory() as profile:
            chromium(path, Path(profile), f"--screenshot={out / f'{name}-{theme}.png'}")
    if found is None:
        return "not measured (no chromium on PATH, or no output: apt-get install chromium)"
    return html.unescape(found.group(1))


def states() -> list[tuple[str, str, str]]:
    """(name, report.md, the verdict words) of the comment's states without a sweep report."""
    head = "0123456789abcdef0123456789abcdef01234567"
    url = "https://github.example/acme/agents/actions/runs/7"
    return [("evaluating", evaluating_report(None, head, url), "Evaluating: wait for the result"),
            ("cancelled", no_report("cancelled", head, run_url=url), "No result: not decided")]


def comment_of_text(text: str) -> str:
    """The comment ``gate comment`` posts for one report.md text."""
    report = parse_report(text).map(lambda s: neutralize(s, context="document"))
    return plan_comment([report], 65_536, Where(None), head="<!-- gate-report -->\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/bench-comment"))
    parser.add_argument("--screenshot", action="store_true",
                        help="also write comment-<theme>.png")
    parser.add_argument("--theme", choices=sorted(THEMES), action="append",
                        help="GitHub theme to render (repeat; default: light and dark)")
    args = parser.parse_args()
    args.theme = args.theme or ["light", "dark"]
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        run = demo_regression(Path(tmp))
        body = comment([run])
        (args.out / "comment.md").write_text(body, encoding="utf-8")
        print(f"demo regression comment: {utf16_len(body)} characters")
        for theme in args.theme:
            pixels = measure(body, args.out, args.screenshot, theme)
            print(f"{theme} theme, pixels from the comment's top, 900 px column: {pixels}")
        for name, text, word in states():
            for theme in args.theme:
                figures = measure(comment_of_text(text), args.out, args.screenshot, theme, name,
                                  word)
                print(f"{name} state, {theme} theme: {figures}")
        for tasks in (40, 400, 1000):
            grown_run = grown(run, Path(tmp) / f"t{tasks}", tasks)
            full = (grown_run / "report.md").read_text()
            print(f"{tasks} tasks: report.md {utf16_len(full)} characters, comment "
                  f"{utf16_len(comment([grown_run]))}")
        three = [grown(run, Path(tmp) / f"sweep{i}", 1000) for i in range(3)]
        body3 = comment(three)
        print(f"3 sweeps of 1000 tasks: comment {utf16_len(body3)} characters, "
              f"{body3.count('[!CAUTION]')} alerts")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
