"""The PR comment as a reviewer sees it: rendered like GitHub, measured in headless Chromium.

Runs the demo's regression sweep (mock/expert@0.8 against mock/expert), plans its comment as
``gate comment`` does, renders it with cmark-gfm (GitHub's own markdown library, ``cmarkgfm``),
turns ``> [!CAUTION]`` blockquotes into alerts as GitHub does, lays it out in a 900 px column
with GitHub-like CSS (14 px system font, the comment box's 16 px padding), and asks headless
Chromium where the verdict, the consequence and the difference end. Also prints the comment's
length at 40, 400 and 1,000 tasks and with three sweeps of 1,000 tasks.

    python bench/comment_render.py [--out DIR] [--screenshot]

Needs ``chromium`` on PATH (Debian: ``apt-get install chromium``) for the pixel figures; the
length figures need nothing else.
"""

from __future__ import annotations

import argparse
import html
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

CSS = """
body { margin: 0; background: #fff; color: #1f2328; font-family: -apple-system,
  BlinkMacSystemFont, "Segoe UI", "Noto Sans", Helvetica, Arial, sans-serif; font-size: 14px;
  line-height: 1.5; }
.comment { width: 900px; box-sizing: border-box; border: 1px solid #d1d9e0;
  border-radius: 6px; margin: 0; }
.header { background: #f6f8fa; border-bottom: 1px solid #d1d9e0; padding: 8px 16px;
  height: 24px; }
.body { padding: 16px; }
.body > *:first-child { margin-top: 0 !important; }
p, blockquote, ul, table, details { margin: 0 0 16px; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 85%;
  background: rgba(129,139,152,.12); padding: .2em .4em; border-radius: 6px; }
table { border-collapse: collapse; display: block; max-width: 100%; overflow: auto; }
td, th { border: 1px solid #d1d9e0; padding: 6px 13px; }
tr:nth-child(2n) { background: #f6f8fa; }
.markdown-alert { padding: 8px 16px; border-left: .25em solid; margin-bottom: 16px; }
.markdown-alert-caution { border-color: #cf222e; }
.markdown-alert-warning { border-color: #9a6700; }
.markdown-alert-tip { border-color: #1a7f37; } .markdown-alert-note { border-color: #0969da; }
.markdown-alert-title { font-weight: 500; margin-bottom: 4px; }
.markdown-alert-caution .markdown-alert-title { color: #d1242f; }
.markdown-alert > p:last-child { margin-bottom: 0; }
sub { font-size: 12px; color: #59636e; }
a { color: #0969da; text-decoration: none; }
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
window.onload = () => {
  const out = {verdict: bottom(/Regression: do not merge/), consequence: bottom(/failed\\)/),
    difference: bottom(/\\u2212\\d+ pp/), height: Math.round(document.querySelector('.comment')
    .getBoundingClientRect().height)};
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


def page(body: str) -> str:
    inner = alerts_as_github(gfm_html(body))
    return (f"<!doctype html><html><head><meta charset='utf-8'><style>{CSS}</style></head>"
            f"<body><div class='comment'><div class='header'><b>github-actions</b> commented"
            f"</div><div class='body'>{inner}</div></div><pre id='m'></pre>{SCRIPT}"
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


def measure(body: str, out: Path, screenshot: bool) -> str:
    path = out / "comment.html"
    path.write_text(page(body), encoding="utf-8")
    with tempfile.TemporaryDirectory() as profile:
        dom = chromium(path, Path(profile), "--virtual-time-budget=3000", "--dump-dom")
    found = re.search(r"<pre id=\"m\">(.*?)</pre>", dom)
    if screenshot:
        with tempfile.TemporaryDirectory() as profile:
            chromium(path, Path(profile), f"--screenshot={out / 'comment.png'}")
    if found is None:
        return "not measured (no chromium on PATH, or no output: apt-get install chromium)"
    return html.unescape(found.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/bench-comment"))
    parser.add_argument("--screenshot", action="store_true", help="also write comment.png")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        run = demo_regression(Path(tmp))
        body = comment([run])
        (args.out / "comment.md").write_text(body, encoding="utf-8")
        print(f"demo regression comment: {utf16_len(body)} characters")
        pixels = measure(body, args.out, args.screenshot)
        print(f"pixels from the comment's top, 900 px column: {pixels}")
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
