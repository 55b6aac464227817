/**
 * Keep a streaming pane's last line in view, but only for a reader who is at the bottom.
 *
 * The open session's entries scroll inside the panel (the message box stays put below them).
 * While the reader is at the bottom, every change to the entries (a delta, a tool card, an
 * approval prompt taking room) scrolls to the new bottom before the browser paints; once they
 * scroll up, nothing moves what they read: the browser's own scroll anchoring is off for the
 * entries (CSS `overflow-anchor: none`), and text only grows below what is on screen.
 */
export class FollowBottom {
  private following = true;
  /** The scrollTop this class set last: its own scroll event must not read as the user's. */
  private placed = -1;
  private readonly mutations: MutationObserver;
  private readonly resizes: ResizeObserver | null;

  constructor(
    private readonly scroller: HTMLElement,
    private readonly slack = 8
  ) {
    scroller.addEventListener('scroll', this.onScroll);
    this.mutations = new MutationObserver(() => this.stick());
    this.mutations.observe(scroller, { childList: true, subtree: true, characterData: true });
    // The entries' box shrinks when a prompt or the message box grows below it.
    this.resizes = typeof ResizeObserver === 'undefined' ? null : new ResizeObserver(() => this.stick());
    this.resizes?.observe(scroller);
    this.stick();
  }

  /** Whether the view follows the end of the stream (the reader is at the bottom). */
  get isFollowing(): boolean {
    return this.following;
  }

  dispose(): void {
    this.scroller.removeEventListener('scroll', this.onScroll);
    this.mutations.disconnect();
    this.resizes?.disconnect();
  }

  private readonly onScroll = (): void => {
    const { scrollTop, scrollHeight, clientHeight } = this.scroller;
    if (scrollTop === this.placed) {
      this.following = true; // where this class put it (the text may have grown since)
      return;
    }
    this.following = scrollHeight - scrollTop - clientHeight <= this.slack;
  };

  private stick(): void {
    if (!this.following) {
      return;
    }
    if (this.placed >= 0 && this.scroller.scrollTop < this.placed - this.slack) {
      // The reader scrolled up and its scroll event has not come yet: stay where they are.
      this.following = false;
      return;
    }
    const bottom = this.scroller.scrollHeight - this.scroller.clientHeight;
    if (bottom > 0 && this.scroller.scrollTop !== bottom) {
      this.scroller.scrollTop = bottom;
      this.placed = this.scroller.scrollTop;
    }
  }
}
