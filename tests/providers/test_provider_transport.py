"""The sharded transport loads the CA store once: every pool shares one verifying TLS context."""

from __future__ import annotations

import ssl
import warnings

from gate.providers.transport import ShardedTransport


def test_all_pools_share_one_verifying_tls_context() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no deprecated httpx path
        transport = ShardedTransport(32)
    contexts = {id(shard._pool._ssl_context) for shard in transport._shards}
    assert transport.shards == 8
    assert contexts == {id(transport.ssl_context)}
    assert transport.ssl_context.verify_mode is ssl.CERT_REQUIRED
    assert transport.ssl_context.check_hostname
