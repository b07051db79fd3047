"""A provider's name as OpenTelemetry GenAI spans give it (``gen_ai.provider.name``).

Tracing backends recognise the well-known values (``openai``, ``openrouter``,
``azure.ai.openai``, ...) and price tokens by them; gate's own config key (``mock``,
``my-router``) means nothing to them. The name comes from the provider's type and the host of
its ``base_url``; any other OpenAI-compatible server is ``openai``, as the official OpenAI
instrumentation names every server it talks to.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from gate.config.schema import ProviderConfig

MOCK = "gate.mock"  # gate's simulated models: a custom value, priced by no backend
HOSTS = (  # (host, or a suffix starting with "."), name
    ("api.openai.com", "openai"),
    ("openrouter.ai", "openrouter"),
    (".openai.azure.com", "azure.ai.openai"),
    (".services.ai.azure.com", "azure.ai.inference"),
    (".models.ai.azure.com", "azure.ai.inference"),
    ("api.anthropic.com", "anthropic"),
    ("generativelanguage.googleapis.com", "gcp.gemini"),
    ("aiplatform.googleapis.com", "gcp.vertex_ai"),
    ("api.mistral.ai", "mistral_ai"),
    ("api.groq.com", "groq"),
    ("api.deepseek.com", "deepseek"),
    ("api.x.ai", "x_ai"),
    ("api.perplexity.ai", "perplexity"),
    ("api.cohere.com", "cohere"),
    ("api.cohere.ai", "cohere"),
)


def genai_provider_name(config: ProviderConfig) -> str:
    """``gen_ai.provider.name`` for a configured provider."""
    if config.type == "mock":
        return MOCK
    host = (urlsplit(config.base_url or "").hostname or "").lower()
    for known, name in HOSTS:
        if host == known or host == known.lstrip(".") or (
                known.startswith(".") and host.endswith(known)):
            return name
        if host.endswith("." + known):  # regional or versioned subdomains
            return name
    if host.startswith("bedrock-runtime.") and host.endswith(".amazonaws.com"):
        return "aws.bedrock"
    return "openai"
