// A third-party SSE client for the integration tests: npm eventsource@4 (the WHATWG EventSource
// API for Node) connected to errinj's event stream. Prints one JSON object per line for every
// request it makes, every open, message, named `overflow` event and error, so the Python test
// can check what a browser-like client makes of our stream. Exits when stdin closes.
//
// Usage: node es_client.mjs URL
import { EventSource } from "eventsource";

const url = process.argv[2];
const print = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");

// Wrapping fetch shows the headers EventSource sends, Last-Event-ID among them on reconnect.
const loggingFetch = (input, init) => {
  print({ kind: "request", headers: init?.headers ?? {} });
  return fetch(input, init);
};

const es = new EventSource(url, { fetch: loggingFetch });
es.onopen = () => print({ kind: "open" });
es.onmessage = (e) => print({ kind: "message", type: e.type, lastEventId: e.lastEventId, data: e.data });
es.addEventListener("overflow", (e) => print({ kind: "overflow", type: e.type, lastEventId: e.lastEventId, data: e.data }));
es.onerror = (e) => print({ kind: "error", message: e.message ?? null, code: e.code ?? null, readyState: es.readyState });

process.stdin.resume();
process.stdin.on("end", () => {
  es.close();
  process.exit(0);
});
