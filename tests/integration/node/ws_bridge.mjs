// ws_bridge.mjs - third-party WebSocket clients for the integration tests, behind one line
// protocol: each line on stdin is sent as a text message, and every open, message and close is
// printed as one JSON line on stdout. Exits when stdin closes (after closing the socket).
//
//   node ws_bridge.mjs ws URL [TOKEN]        npm ws@8
//   node ws_bridge.mjs browser URL [TOKEN]   the WebSocket of Debian's headless Chromium
//                                            (playwright-core), from a page of the server itself
//
// Both offer the subprotocols "errinj" and, with a token, "errinj.bearer.TOKEN", the way a
// browser has to send a token. Printed: {"kind":"open","protocol":P}, {"kind":"message","data":D},
// {"kind":"close","code":C}, {"kind":"error","message":M}.
import { chromium } from 'playwright-core';
import WebSocket from 'ws';
import readline from 'node:readline';

const [mode, url, token] = process.argv.slice(2);
const protocols = token ? ['errinj', `errinj.bearer.${token}`] : ['errinj'];
const print = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');
const lines = readline.createInterface({ input: process.stdin });

async function viaWs() {
  const ws = new WebSocket(url, protocols);
  ws.on('open', () => print({ kind: 'open', protocol: ws.protocol }));
  ws.on('message', (data, isBinary) => print({ kind: 'message', binary: isBinary, data: data.toString() }));
  ws.on('close', (code) => print({ kind: 'close', code }));
  ws.on('error', (e) => print({ kind: 'error', message: String(e.message) }));
  lines.on('line', (line) => ws.send(line));
  lines.on('close', () => {
    ws.close(1000);
    ws.once('close', () => process.exit(0));
    setTimeout(() => process.exit(0), 5000).unref(); // allow-sleep: a deadline for the close, not a wait
  });
}

async function viaBrowser() {
  const browser = await chromium.launch({
    executablePath: process.env.ERRINJ_CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox'],
  });
  const page = await browser.newPage();
  // The close is printed before the browser goes: closing it first would lose the close event.
  let reportClosed;
  const closeReported = new Promise((resolve) => { reportClosed = resolve; });
  await page.exposeFunction('report', (obj) => {
    print(obj);
    if (obj.kind === 'close') reportClosed();
  });
  // The dashboard's page: the socket's Origin is then the server's own, as the API requires.
  const wsUrl = new URL(url);
  await page.goto(`http://${wsUrl.host}/v2/error_injection/ui`);
  await page.evaluate(([u, p]) => {
    const ws = new WebSocket(u, p);
    window.errinjSocket = ws;
    ws.onopen = () => window.report({ kind: 'open', protocol: ws.protocol });
    ws.onmessage = (e) => window.report({ kind: 'message', binary: typeof e.data !== 'string', data: String(e.data) });
    ws.onclose = (e) => window.report({ kind: 'close', code: e.code });
    ws.onerror = () => window.report({ kind: 'error', message: 'WebSocket error event' });
  }, [url, protocols]);
  lines.on('line', (line) => page.evaluate((l) => window.errinjSocket.send(l), line));
  lines.on('close', async () => {
    await page.evaluate(() => window.errinjSocket.close(1000)).catch(() => {});
    // allow-sleep: the 5 s is a deadline; the race ends when the close is reported
    await Promise.race([closeReported, new Promise((resolve) => setTimeout(resolve, 5000).unref())]);
    await browser.close();
    process.exit(0);
  });
}

(mode === 'browser' ? viaBrowser() : viaWs()).catch((e) => {
  print({ kind: 'error', message: String(e && e.message) });
  process.exit(1);
});
