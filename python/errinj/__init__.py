"""errinj: the asyncio client of errinj's REST API and event stream.

```python
from errinj import RESTClient, injection_event_stream, inject_error, inject_error_one_shot

api = RESTClient(port=10000)
async with injection_event_stream(ip) as stream:       # returns once the server said ': connected'
    await api.enable_injection(ip, "name", one_shot=True)
    ...                                                 # make the server reach the point
    event = await stream.wait_for_injection("name", timeout=30)
```

``RESTClient`` mirrors ScyllaDB's test/pylib REST helpers; ``InjectionEventStream`` (made by
``injection_event_stream`` / ``cluster_event_stream``) is the event stream; see their docstrings for
what each call waits for. ``errinj.pytest_plugin`` gives the fixtures ``errinj_api`` and
``errinj_stream``. ``injection_session`` (``InjectionSession``) is the WebSocket channel: the same
events and waits plus enable/disable/message over the socket, its injections disabled when it closes.
"""

from .errors import EventsLostError, HTTPError, InjectionTimeout, StreamClosedError
from .rest import RESTClient, InjectionHandler, inject_error, inject_error_one_shot
from .sse import SSEComment, SSEEvent, SSEParser
from .stream import InjectionEventStream, cluster_event_stream, injection_event_stream
from .session import InjectionSession, injection_session


def __getattr__(name):
    # The plugin imports pytest: load it only when the warning class is asked for.
    if name == "UnreachedInjectionWarning":
        from .pytest_plugin import UnreachedInjectionWarning
        return UnreachedInjectionWarning
    raise AttributeError(name)

__version__ = "0.1.0"

__all__ = [
    "RESTClient", "InjectionHandler", "inject_error", "inject_error_one_shot",
    "InjectionEventStream", "injection_event_stream", "cluster_event_stream",
    "InjectionSession", "injection_session",
    "HTTPError", "InjectionTimeout", "StreamClosedError", "EventsLostError",
    "SSEParser", "SSEEvent", "SSEComment", "UnreachedInjectionWarning",
]
