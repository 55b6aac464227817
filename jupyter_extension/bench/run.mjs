// Runs bench/pane.bench.ts under jsdom: `npm run bench` (see benchmarks/README.md).
import { build } from 'esbuild';
import { JSDOM } from 'jsdom';

const { window } = new JSDOM('<!doctype html><html><body></body></html>');
for (const name of ['window', 'document', 'Node', 'Text', 'HTMLElement', 'HTMLInputElement', 'Option']) {
  globalThis[name] = name === 'window' ? window : window[name];
}
const bundle = await build({
  entryPoints: [new URL('./pane.bench.ts', import.meta.url).pathname],
  bundle: true,
  write: false,
  format: 'esm',
  platform: 'node',
  logLevel: 'warning'
});
const source = Buffer.from(bundle.outputFiles[0].text).toString('base64');
await import(`data:text/javascript;base64,${source}`);
