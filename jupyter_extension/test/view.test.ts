/**
 * @jest-environment jsdom
 *
 * The pane's DOM on recorded streams: what a person sees and can click.
 */
import { readFileSync } from 'fs';
import { join } from 'path';

import { ApiError, type ElicitationBody, type PaneActions, type ResumeBody } from '../src/pane/actions';
import { Pane } from '../src/pane/pane';
import type { Envelope } from '../src/pane/types';

function fixture(name: string): Envelope[] {
  return JSON.parse(readFileSync(join(__dirname, 'fixtures', `${name}.json`), 'utf8'));
}

class RecordingActions implements PaneActions {
  resumed: ResumeBody[] = [];
  answered: ElicitationBody[] = [];
  cancels = 0;
  failWith: Error | null = null;

  async resume(body: ResumeBody): Promise<void> {
    this.resumed.push(body);
    if (this.failWith) {
      throw this.failWith;
    }
  }

  async elicitation(body: ElicitationBody): Promise<void> {
    this.answered.push(body);
    if (this.failWith) {
      throw this.failWith;
    }
  }

  async cancel(): Promise<void> {
    this.cancels += 1;
  }
}

function buttonNamed(root: HTMLElement, label: string): HTMLButtonElement {
  const found = [...root.querySelectorAll('button')].find(b => b.textContent === label);
  if (!found) {
    throw new Error(`no button ${label}`);
  }
  return found;
}

function visibleButtons(root: HTMLElement): string[] {
  return [...root.querySelectorAll('button')].filter(b => !b.hidden).map(b => b.textContent!);
}

/** Let the promise callbacks of a click run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) {
    await Promise.resolve();
  }
}

function mount(actions: PaneActions = new RecordingActions()): { pane: Pane; host: HTMLElement } {
  const host = document.createElement('div');
  document.body.appendChild(host);
  return { pane: new Pane(host, { sessionId: 's', actions }), host };
}

function until(events: Envelope[], type: string): Envelope[] {
  return events.slice(0, events.findIndex(e => e.event.type === type) + 1);
}

afterEach(() => {
  document.body.replaceChildren();
});

describe('a recorded turn in the DOM', () => {
  it('shows the approval prompt with its four labelled buttons and the reason box', async () => {
    const actions = new RecordingActions();
    const { pane, host } = mount(actions);
    pane.dispatchAll(until(fixture('approve'), 'tool_call_confirmation'));
    pane.flush();
    expect(visibleButtons(host)).toEqual([
      'Stop',
      'Approve',
      'Approve for session',
      'Always allow this tool',
      'Reject'
    ]);
    expect(host.querySelector('.nbsession-pane-approval')!.textContent).toContain('Run shell?');
    expect(host.querySelector('.nbsession-pane-status')!.textContent).toMatch(
      /^Waiting for approval · \d/
    );

    buttonNamed(host, 'Approve').click();
    expect(buttonNamed(host, 'Reject').disabled).toBe(true); // one answer in flight at a time
    await settle();
    buttonNamed(host, 'Always allow this tool').click();
    await settle();
    const reason = host.querySelector<HTMLInputElement>('.nbsession-pane-reason')!;
    reason.value = '  too risky ';
    buttonNamed(host, 'Reject').click();
    await settle();
    expect(actions.resumed).toEqual([
      { confirmation: 'approve' },
      { confirmation: 'approve-tool', tool_name: 'shell' },
      { confirmation: 'reject', reason: 'too risky' }
    ]);
  });

  it('renders the whole turn: Markdown answer, collapsed reasoning, tool card, usage', () => {
    const { pane, host } = mount();
    pane.dispatchAll(fixture('approve'));
    pane.flush();
    expect(host.querySelector('.nbsession-pane-approval')).toBeNull();
    expect(host.querySelector('.nbsession-pane-user')!.textContent).toBe('list the files');
    const reasoning = host.querySelector<HTMLDetailsElement>('.nbsession-pane-reasoning')!;
    expect(reasoning.open).toBe(false);
    const answers = host.querySelectorAll('.nbsession-pane-answer');
    expect(answers).toHaveLength(2);
    expect(answers[0].querySelector('code')!.textContent).toBe('ls -la');
    const card = host.querySelector<HTMLElement>('.nbsession-pane-tool')!;
    expect(card.dataset.state).toBe('done');
    expect(card.querySelector('.nbsession-pane-tool-name')!.textContent).toBe('shell');
    expect(card.querySelector('.nbsession-pane-tool-state')!.textContent).toBe('done · approved');
    expect(card.querySelector('.nbsession-pane-tool-args')!.textContent).toContain('"ls -la"');
    expect(card.querySelector('.nbsession-pane-tool-result')!.textContent).toContain('notes.txt');
    expect(host.querySelector('.nbsession-pane-title')!.textContent).toBe('List the files');
    expect(host.querySelector('.nbsession-pane-status')!.textContent).toMatch(/^Done · /);
    expect(host.querySelector('.nbsession-pane-footer')!.textContent).toMatch(
      /^100 in \/ \d+ out tokens · \$0\.00$/
    );
    expect(buttonNamed(host, 'Stop').hidden).toBe(true);
  });

  it('shows a running call\'s streamed output, then its result once', () => {
    const events = fixture('approve');
    const streamed = events.find(e => e.event.type === 'tool_call_output');
    expect(streamed).toBeDefined(); // the shell streams its output as it runs
    const { pane, host } = mount();
    pane.dispatchAll(until(events, 'tool_call_output'));
    pane.flush();
    const card = host.querySelector<HTMLElement>('.nbsession-pane-tool')!;
    const output = card.querySelector<HTMLElement>('.nbsession-pane-tool-output')!;
    expect(output.hidden).toBe(false);
    expect(output.textContent).toBe(streamed!.event.output);
    expect(card.querySelector('.nbsession-pane-tool-state')!.textContent).toBe(
      'running · approved'
    );
    pane.dispatchAll(events);
    pane.flush();
    expect(output.hidden).toBe(true);
    const result = card.querySelector<HTMLElement>('.nbsession-pane-tool-result')!;
    expect(result.hidden).toBe(false);
    expect(result.textContent).toContain('notes.txt');
  });

  it('marks a cancelled turn and its interrupted call', () => {
    const { pane, host } = mount();
    pane.dispatchAll(fixture('cancel'));
    pane.flush();
    expect(host.querySelector('.nbsession-pane-status')!.textContent).toMatch(/^Cancelled/);
    const card = host.querySelector<HTMLElement>('.nbsession-pane-tool')!;
    expect(card.dataset.state).toBe('failed');
    expect(card.querySelector('.nbsession-pane-error')).not.toBeNull();
  });

  it('Stop cancels the turn', async () => {
    const actions = new RecordingActions();
    const { pane, host } = mount(actions);
    pane.dispatch({ type: 'stream_started' }, 1);
    pane.flush();
    buttonNamed(host, 'Stop').click();
    await settle();
    expect(actions.cancels).toBe(1);
  });

  it('says so when the prompt was already answered elsewhere', async () => {
    const actions = new RecordingActions();
    actions.failWith = new ApiError(409, 'nothing_pending', 'No tool call is waiting.');
    const { pane, host } = mount(actions);
    pane.dispatchAll(until(fixture('approve'), 'tool_call_confirmation'));
    pane.flush();
    buttonNamed(host, 'Approve').click();
    await settle();
    expect(host.querySelector('.nbsession-pane-prompt-error')!.textContent).toBe(
      'Already answered elsewhere; nothing was changed.'
    );
  });
});

describe('a file edit to approve', () => {
  const events = fixture('write');

  it('shows the proposed change as a diff, its arguments folded away', async () => {
    const actions = new RecordingActions();
    const { pane, host } = mount(actions);
    pane.dispatchAll(until(events, 'tool_call_confirmation'));
    pane.flush();
    const prompt = host.querySelector<HTMLElement>('.nbsession-pane-approval')!;
    expect(prompt.getAttribute('aria-label')).toBe('Approve the write_file tool call?');
    const diff = prompt.querySelector<HTMLElement>('.nbsession-pane-diff')!;
    const lines = [...diff.children].map(line => [line.className, line.textContent]);
    expect(lines).toEqual([
      ['nbsession-pane-diff-file', '--- a/notes.txt\n'],
      ['nbsession-pane-diff-file', '+++ b/notes.txt\n'],
      ['nbsession-pane-diff-hunk', '@@ -1 +1,2 @@\n'],
      ['nbsession-pane-diff-context', ' hello\n'],
      ['nbsession-pane-diff-add', '+world\n']
    ]);
    const folded = prompt.querySelector<HTMLDetailsElement>('.nbsession-pane-prompt-args')!;
    expect(folded.open).toBe(false);
    expect(folded.textContent).toContain('"content": "hello\\nworld\\n"');
    buttonNamed(prompt, 'Approve').click();
    await settle();
    expect(actions.resumed).toEqual([{ confirmation: 'approve' }]);
  });

  it('marks removed lines, and a removed line that starts with dashes is not a header', () => {
    const { pane, host } = mount();
    const confirmation = until(events, 'tool_call_confirmation').pop()!;
    const diff = '--- a/x\n+++ b/x\n@@ -1,2 +1 @@\n--- not a header\n-<b>gone</b>\n';
    pane.dispatch({ ...confirmation.event, diff }, confirmation.seq);
    pane.flush();
    const lines = [...host.querySelectorAll('.nbsession-pane-diff > span')];
    expect(lines.map(line => line.className.replace('nbsession-pane-diff-', ''))).toEqual([
      'file',
      'file',
      'hunk',
      'del',
      'del'
    ]);
    expect(host.querySelector('.nbsession-pane-diff b')).toBeNull(); // text, never HTML
  });
});

describe('streaming', () => {
  it('never injects HTML the model wrote', () => {
    const { pane, host } = mount();
    pane.dispatch({ type: 'stream_started' }, 1);
    pane.dispatch(
      {
        type: 'agent_choice',
        content:
          '<img src=x onerror="alert(1)"> <script>alert(2)</script>\n\n' +
          '[click](javascript:alert(3)) [ok](https://example.org)\n\n'
      },
      2
    );
    pane.flush();
    const answer = host.querySelector('.nbsession-pane-answer')!;
    expect(answer.querySelector('img, script')).toBeNull();
    expect(answer.textContent).toContain('<img src=x onerror="alert(1)">');
    const links = [...answer.querySelectorAll('a')];
    expect(links.map(a => a.getAttribute('href'))).toEqual(['https://example.org']);
    expect(links[0].rel).toBe('noopener noreferrer');
  });

  it('keeps finished blocks in place and renders at most once per frame', () => {
    jest.useFakeTimers();
    try {
      let now = 0;
      const host = document.createElement('div');
      const pane = new Pane(host, {
        sessionId: 's',
        actions: new RecordingActions(),
        now: () => now
      });
      pane.dispatch({ type: 'stream_started' }, 1);
      pane.dispatch({ type: 'agent_choice', content: 'First paragraph.\n\n' }, 2);
      jest.advanceTimersByTime(50);
      const first = host.querySelector('.nbsession-pane-block');
      expect(first!.textContent).toBe('First paragraph.\n');
      const before = pane.renders;
      // 10,000 deltas over one simulated second: about 20 renders, not 10,000.
      for (let i = 0; i < 10000; i++) {
        pane.dispatch({ type: 'agent_choice', content: `w${i} ` }, i + 3);
        if (i % 10 === 0) {
          now += 1;
          jest.advanceTimersByTime(1);
        }
      }
      jest.advanceTimersByTime(100);
      expect(pane.renders - before).toBeLessThanOrEqual(22);
      expect(host.querySelector('.nbsession-pane-block')).toBe(first);
      expect(host.querySelector('.nbsession-pane-tail')!.textContent).toContain('w9999');
      pane.dispose();
    } finally {
      jest.useRealTimers();
    }
  });

  it('a snapshot rebuilds the entries from scratch', () => {
    const { pane, host } = mount();
    pane.dispatchAll(fixture('approve'));
    pane.flush();
    const snapshot = JSON.parse(
      readFileSync(join(__dirname, 'fixtures', 'snapshot-waiting.json'), 'utf8')
    );
    pane.dispatch({ type: 'pane.snapshot', snapshot });
    pane.flush();
    expect(host.querySelectorAll('.nbsession-pane-answer')).toHaveLength(1);
    expect(host.querySelectorAll('.nbsession-pane-tool')).toHaveLength(1);
  });
});

describe('the elicitation form', () => {
  const schema = {
    type: 'object',
    properties: {
      name: { type: 'string', title: 'Name', minLength: 2 },
      age: { type: 'integer', minimum: 0 },
      score: { type: 'number' },
      subscribe: { type: 'boolean', default: true },
      color: { type: 'string', enum: ['red', 'green'], enumNames: ['Red', 'Green'] }
    },
    required: ['name', 'color']
  };

  function ask(actions: RecordingActions): HTMLElement {
    const { pane, host } = mount(actions);
    pane.dispatch({ type: 'stream_started' }, 1);
    pane.dispatch(
      {
        type: 'elicitation_request',
        message: 'Tell me about you',
        mode: 'form',
        schema,
        elicitation_id: 'el_1'
      },
      2
    );
    pane.flush();
    return host;
  }

  function input(host: HTMLElement, name: string): HTMLInputElement & HTMLSelectElement {
    return host.querySelector(`[name="${name}"]`)!;
  }

  it('has a labelled field per property and the three buttons', () => {
    const host = ask(new RecordingActions());
    const labels = [...host.querySelectorAll('label')].map(l => l.textContent);
    expect(labels).toEqual(['Name *', 'age', 'score', 'subscribe', 'color *']);
    for (const label of host.querySelectorAll('label')) {
      expect(host.querySelector(`#${label.htmlFor}`)).not.toBeNull();
    }
    expect(input(host, 'subscribe').checked).toBe(true);
    expect([...input(host, 'color').options].map(o => o.text)).toEqual(['Choose…', 'Red', 'Green']);
    expect(visibleButtons(host)).toEqual(['Stop', 'Submit', 'Decline', 'Cancel']);
  });

  it('shows what is wrong and sends nothing, then sends typed content', async () => {
    const actions = new RecordingActions();
    const host = ask(actions);
    input(host, 'name').value = 'A';
    input(host, 'age').value = '2.5';
    buttonNamed(host, 'Submit').click();
    await settle();
    expect(actions.answered).toEqual([]);
    const errors = [...host.querySelectorAll('.nbsession-pane-field-error')].map(e => e.textContent);
    expect(errors).toEqual(['At least 2 characters.', 'Enter a whole number.', '', '', 'Required.']);

    input(host, 'name').value = 'Ada';
    input(host, 'age').value = '36';
    input(host, 'color').value = '1';
    buttonNamed(host, 'Submit').click();
    await settle();
    expect(actions.answered).toEqual([
      {
        action: 'accept',
        content: { name: 'Ada', age: 36, subscribe: true, color: 'green' },
        elicitation_id: 'el_1'
      }
    ]);
  });

  it('shows the server refusing the answer and keeps the form', async () => {
    const actions = new RecordingActions();
    actions.failWith = new ApiError(400, 'invalid_request', 'content.name: too short');
    const host = ask(actions);
    buttonNamed(host, 'Decline').click();
    await settle();
    expect(actions.answered[0]).toEqual({ action: 'decline', elicitation_id: 'el_1' });
    expect(host.querySelector('.nbsession-pane-form .nbsession-pane-prompt-error')!.textContent).toBe(
      'content.name: too short'
    );
    expect(host.querySelector('.nbsession-pane-form')).not.toBeNull();
  });
});

describe('the plan and the todo list', () => {
  it('shows the latest plan as Markdown and the todo list as a checklist, in place', () => {
    const { pane, host } = mount();
    expect(host.querySelector<HTMLElement>('.nbsession-pane-plan')!.hidden).toBe(true);
    expect(host.querySelector<HTMLElement>('.nbsession-pane-todos')!.hidden).toBe(true);
    const written = fixture('write-plan');
    pane.dispatchAll(written);
    pane.flush();
    const plan = host.querySelector<HTMLDetailsElement>('.nbsession-pane-plan')!;
    expect(plan.hidden).toBe(false);
    expect(plan.open).toBe(true);
    expect(plan.querySelector('h1')!.textContent).toBe('Plan');
    expect([...plan.querySelectorAll('li')].map(li => li.textContent)).toEqual(['Read', 'Write']);
    plan.open = false; // folded by the user: a newer plan keeps it folded, in the same node
    const last = written[written.length - 1].seq!;
    pane.dispatch({ type: 'plan_updated', agent_name: 'root', content: '- only step' }, last + 1);
    const todoTurn = fixture('plan').map(e => ({ ...e, seq: e.seq! + last + 1 }));
    pane.dispatchAll(todoTurn);
    pane.flush();
    expect(host.querySelector('.nbsession-pane-plan')).toBe(plan);
    expect(plan.open).toBe(false);
    expect(plan.querySelector('li')!.textContent).toBe('only step');
    const todos = host.querySelector<HTMLElement>('.nbsession-pane-todos')!;
    expect(todos.hidden).toBe(false);
    expect(todos.querySelector('summary')!.textContent).toBe('Todos · 0/3 done');
    const items = [...todos.querySelectorAll<HTMLElement>('.nbsession-pane-todo')];
    expect(items.map(li => li.dataset.status)).toEqual(['pending', 'pending', 'pending']);
    expect(items[1].querySelector('.nbsession-pane-todo-text')!.textContent).toBe('Do the work');
  });
});
