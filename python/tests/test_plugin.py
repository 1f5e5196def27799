"""The pytest plugin's fixtures (errinj_port is overridden in conftest.py to the fake server's)."""

import pytest

from errinj import InjectionEventStream, RESTClient


async def test_errinj_api_makes_clients_with_the_default_port(server, errinj_api):
    api = errinj_api()
    assert isinstance(api, RESTClient) and api.port == server.port
    await api.enable_injection("127.0.0.1", "x", one_shot=False)
    assert list(server.injections) == ["x"]


async def test_errinj_stream_opens_a_connected_stream(server, errinj_stream, errinj_api):
    stream = await errinj_stream("127.0.0.1", injection="x")
    assert isinstance(stream, InjectionEventStream) and server.subscribers
    server.fire("x")
    assert (await stream.wait_for_injection("x", timeout=5))["node"] == server.node


async def test_errinj_stream_merges_a_list_of_nodes(make_server, errinj_stream):
    one, two = await make_server(), await make_server()
    stream = await errinj_stream([one.node, two.node])
    assert stream.nodes == [one.node, two.node]


@pytest.fixture
def errinj_token():
    return "tok"


async def test_errinj_token_is_the_default_token(make_server, errinj_api):
    server = await make_server(token="tok")
    await errinj_api(port=server.port).get_enabled_injections("127.0.0.1")
    assert server.requests[-1].headers["Authorization"] == "Bearer tok"
