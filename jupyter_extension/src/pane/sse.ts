/**
 * A Server-Sent Events parser for `fetch` streams (EventSource cannot send `Last-Event-ID`
 * on a reconnect of our choosing, nor carry our headers).
 */

export interface SSEMessage {
  /** The message's own `id:` field; null when it has none (as for `gap`). */
  id: string | null;
  data: string;
}

export class SSEParser {
  private buffer = '';
  private id: string | null = null;
  private data: string[] = [];

  /** Feed decoded text; returns the messages completed by it. Comments (`: ping`) vanish. */
  feed(chunk: string): SSEMessage[] {
    this.buffer += chunk;
    const messages: SSEMessage[] = [];
    const newline = /\r\n|\r|\n/g;
    let start = 0;
    for (;;) {
      newline.lastIndex = start;
      const found = newline.exec(this.buffer);
      if (!found) {
        break;
      }
      const end = found.index;
      // A lone \r at the very end may be the first half of \r\n: wait for more text.
      if (this.buffer[end] === '\r' && end + 1 === this.buffer.length) {
        break;
      }
      const line = this.buffer.slice(start, end);
      start = end + (this.buffer.startsWith('\r\n', end) ? 2 : 1);
      const message = this.line(line);
      if (message) {
        messages.push(message);
      }
    }
    this.buffer = this.buffer.slice(start);
    return messages;
  }

  private line(line: string): SSEMessage | null {
    if (line === '') {
      const message = this.data.length ? { id: this.id, data: this.data.join('\n') } : null;
      this.id = null;
      this.data = [];
      return message;
    }
    if (line.startsWith(':')) {
      return null;
    }
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) {
      value = value.slice(1);
    }
    if (field === 'data') {
      this.data.push(value);
    } else if (field === 'id') {
      this.id = value;
    }
    return null;
  }
}
