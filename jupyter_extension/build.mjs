// Bundle the pane into the anywidget ES module the Python package serves
// (nbsession/widgets/static/pane.js and pane.css): one file each, no runtime imports.
import { build } from 'esbuild';

const outdir = new URL('../nbsession/widgets/static/', import.meta.url).pathname;

await build({
  entryPoints: { pane: 'src/widget.ts' },
  outdir,
  bundle: true,
  format: 'esm',
  target: 'es2020',
  minify: true,
  sourcemap: false,
  legalComments: 'none',
  logLevel: 'warning'
});
await build({
  entryPoints: { pane: 'src/pane/pane.css' },
  outdir,
  bundle: true,
  minify: true,
  logLevel: 'warning'
});
