"""A gate project: the repository's gate.yaml, models.yaml, prompts/, tools/, tasks/ and
fixtures/, loaded and checked as a whole (with its environments and its agent settings).

    load          load_project -> Project (every problem of every file, hashed for the manifest)
    schema_check  tool arguments against a tool's JSON Schema
    agent_check   gate.yaml's ``agent`` and ``agent_overrides`` beyond the schema
    registry      the only writer of models.yaml (never ``adopted``)

``gate.config`` below it is only the schema and the YAML reader.
"""
