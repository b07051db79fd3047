"""The simulated provider: models that act on a project's tasks without a key, served over
loopback HTTP so that every run reaches them through the same client as a paid provider.

    models   MockProvider (mock/expert, mock/expert@P, mock/random, ...), mock_model_ids
    server   MockServer: OpenAI-compatible loopback server with fault injection
    handler  the HTTP request handler behind MockServer
    cli      ``gate mock-server``

Chosen by ``gate.connect`` for a provider of ``type: mock``.
"""
