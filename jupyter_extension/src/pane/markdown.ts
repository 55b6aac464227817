/**
 * Streamed Markdown: render finished blocks once, re-render only the unfinished tail.
 *
 * markdown-it runs with `html: false`, so HTML written by the model is shown as text, never
 * parsed; its link validation drops `javascript:`, `vbscript:` and `file:` URLs. Links open in
 * a new tab without access to this page.
 */
import MarkdownIt from 'markdown-it';

const md = new MarkdownIt({ html: false, linkify: true, breaks: false });

const defaultLinkOpen =
  md.renderer.rules.link_open ??
  ((tokens, idx, options, _env, self) => self.renderToken(tokens, idx, options));
md.renderer.rules.link_open = (tokens, idx, options, env, self) => {
  tokens[idx].attrSet('target', '_blank');
  tokens[idx].attrSet('rel', 'noopener noreferrer');
  return defaultLinkOpen(tokens, idx, options, env, self);
};

/** Markdown source to HTML that is safe to assign to `innerHTML`. */
export function renderMarkdown(source: string): string {
  return md.render(source);
}

const FENCE = /^ {0,3}(`{3,}|~{3,})/;

/**
 * Splits a growing text into finished blocks and the tail still being written.
 *
 * A block ends at a blank line outside a fenced code block; what follows cannot change how
 * it renders (reference-style links aside). Each call scans only the text added since the
 * last one, so a whole stream costs time linear in its length.
 */
export class BlockSplitter {
  private committed = 0; // text[0:committed] has been handed out as finished blocks
  private scanned = 0; // complete lines before this offset have been looked at
  private fence = ''; // the opening marker of the fence we are in, or ''

  /** The blocks finished since the last call, and the current unfinished tail. */
  advance(text: string): { blocks: string[]; tail: string } {
    const blocks: string[] = [];
    let lineEnd = text.indexOf('\n', this.scanned);
    while (lineEnd >= 0) {
      const line = text.slice(this.scanned, lineEnd);
      const marker = FENCE.exec(line)?.[1];
      if (this.fence) {
        if (marker && marker[0] === this.fence[0] && marker.length >= this.fence.length) {
          this.fence = '';
        }
      } else if (marker) {
        this.fence = marker;
      } else if (line.trim() === '' && lineEnd + 1 > this.committed) {
        const block = text.slice(this.committed, lineEnd + 1);
        if (block.trim()) {
          blocks.push(block);
        }
        this.committed = lineEnd + 1;
      }
      this.scanned = lineEnd + 1;
      lineEnd = text.indexOf('\n', this.scanned);
    }
    return { blocks, tail: text.slice(this.committed) };
  }
}
