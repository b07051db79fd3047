"""Tasks from production traffic (``gate import-traces``; docs/traffic.md).

- ``jsonl``, ``otlp``: readers of the two input formats, each yielding ``session.Session``s
  and the problems of the lines they skipped (file:line, never the line's content);
- ``redact``: personal data and secrets replaced by stable placeholders, by default;
- ``build``: sessions -> tools, tasks and fixtures of a ``replay`` environment, dedup, labels;
- ``summary``: the coverage summary; ``write``: the suite written all at once;
- ``cli``: the command.
"""
