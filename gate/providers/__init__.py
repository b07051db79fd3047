"""Providers: everything between the agent loop and a chat-completions endpoint.

    base           the contract: Provider, ChatRequest/ChatResponse, Attempt, ErrorKind
    factory        build_client, build_provider, prepare_pricing, fetch_balance
    openai_compat  OpenAICompatProvider: its wires inside the guards; prices, balance
    guards         Guards: halt, price, budget, retry, cooldown, rate limit, audit, around any
                   wire of the provider
    wire           the wire client's contract (Wire, WireRequest, Outcome): one request, one
                   classified outcome, no policy
    chat_wire      ChatWire: POST /chat/completions
    responses_wire ResponsesWire: POST /responses (providers declaring responses_api)
    classify       pure: (status, body, exception) -> ErrorKind | None; Retry-After parsing
    retry          pure backoff and retry predicate (tenacity), provider-wide cooldown
    ratelimit      RateLimiter: sliding window + minimum interval, shared by all calls
    pricing        live (/models) or table prices, exact ids only; compute_cost
    budget         Budget: pre-call cost projection against the ceiling (CircuitBreakerError)
    redact         Secret and the log filter that keeps API keys out of logs and messages
    transport      GateClient: the run's httpx client over aiohttp (proxies, TLS trust, happy
                   eyeballs, pooled connections checked before reuse); network error kinds
    capped         send_capped: one request, its body capped, the attempt's deadline
    testing        EchoBackend and FakeTime, for tests

The simulated models are in ``gate.simulate``; ``gate.connect`` opens a run's providers.
"""
