"""Shared fixtures: fake errinj servers (see fake_server.py) and the errinj pytest plugin.

The plugin is registered by the package's pytest11 entry point once it is installed; when the
tests run from the source tree (PYTHONPATH=python, as CTest does) it is loaded here instead.
"""

import pytest

from fake_server import FakeServer


def pytest_configure(config):
    if not (config.pluginmanager.has_plugin("errinj") or config.pluginmanager.has_plugin("errinj.pytest_plugin")):
        config.pluginmanager.import_plugin("errinj.pytest_plugin")


@pytest.fixture
async def make_server():
    """A factory of started fake servers, all stopped when the test ends."""
    servers = []

    async def make(**kwargs):
        server = await FakeServer(**kwargs).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        await server.stop()


@pytest.fixture
async def server(make_server):
    return await make_server()


@pytest.fixture
def errinj_port(server):
    """The plugin's fixtures talk to the fake server."""
    return server.port
