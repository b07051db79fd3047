"""Providers: everything between the agent loop and a chat-completions endpoint.

    base           the contract: Provider, ChatRequest/ChatResponse, Attempt, ErrorKind
    factory        build_client, build_provider, prepare_pricing, fetch_balance
    openai_compat  OpenAICompatProvider: retries, rate limit, cooldown, 402 halt, accounting
    classify       pure: (status, body, exception) -> ErrorKind | None; Retry-After parsing
    retry          pure backoff and retry predicate (tenacity), provider-wide cooldown
    ratelimit      RateLimiter: sliding window + minimum interval, shared by all calls
    pricing        live (/models) or table prices, exact ids only; compute_cost
    budget         Budget: pre-call cost projection against the ceiling (CircuitBreakerError)
    redact         Secret and the log filter that keeps API keys out of logs and messages
    transport      GateTransport, GateClient: the run's HTTP client over gate's own pool
    http1          the HTTP/1.1 keep-alive pool (one write per request, audit-before-send)
    testing        EchoBackend and FakeTime, for tests

The simulated models are in ``gate.simulate``; ``gate.connect`` opens a run's providers.
"""
