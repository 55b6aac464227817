/**
 * The open session's model picker: the choices of `GET /api/sessions/{id}/models`, the
 * server's current one selected. A pick applies from the next turn (the run request carries
 * it; the server validates and keeps it), as `session.set_model()` does in the SDK.
 *
 * The server lists models only for a session that has a runtime on it (one that ran a turn
 * since the server started), so the picker says so until then and reads the list again after
 * each turn. Any other refusal is shown under the picker with the server's message.
 */
import { ApiError } from '../pane';
import { messageOf, type SessionModels } from './api';

/** What the picker shows for the list it read (pure: unit-tested without a DOM). */
export interface PickerChoices {
  options: { value: string; label: string }[];
  /** The option to select: the user's pending pick when still offered, else the current. */
  selected: string;
}

export function pickerChoices(models: SessionModels, pending: string | null): PickerChoices {
  const options = models.models.map(choice => ({
    value: choice.ref,
    label: (choice.name || choice.ref) + (choice.is_default ? ' (default)' : '')
  }));
  const offered = new Set(options.map(option => option.value));
  const selected = pending !== null && offered.has(pending) ? pending : models.current_model_ref;
  return { options, selected };
}

export class ModelPicker {
  readonly node = document.createElement('div');
  private readonly select = document.createElement('select');
  private readonly note = document.createElement('div');
  private readonly error = document.createElement('div');
  /** The server's current model ref; '' before the list was read. */
  private current = '';
  private loading: Promise<void> | null = null;

  constructor(private readonly read: () => Promise<SessionModels>) {
    this.node.className = 'nbsession-sidebar-model';
    const label = document.createElement('label');
    label.className = 'nbsession-sidebar-model-label';
    label.textContent = 'Model ';
    this.select.setAttribute('aria-label', 'Model');
    this.select.disabled = true;
    label.appendChild(this.select);
    this.note.className = 'nbsession-sidebar-model-note';
    this.note.setAttribute('role', 'status');
    this.error.className = 'nbsession-sidebar-error';
    this.error.setAttribute('role', 'alert');
    this.select.addEventListener('change', () => this.describe());
    this.node.append(label, this.note, this.error);
  }

  /** The model the next turn asks for: the pick, when it differs from the current one. */
  get next(): string | undefined {
    const value = this.select.value;
    return value && value !== this.current ? value : undefined;
  }

  /** Read the choices again (on open, after each turn); one read at a time. */
  refresh(): Promise<void> {
    this.loading ??= this.load().finally(() => {
      this.loading = null;
    });
    return this.loading;
  }

  private async load(): Promise<void> {
    let models: SessionModels;
    try {
      models = await this.read();
    } catch (error) {
      if (error instanceof ApiError && error.code === 'session_not_running') {
        this.error.textContent = '';
        this.note.textContent = "The agent's models are listed after the session's first turn.";
      } else {
        this.error.textContent = `Models could not be read: ${messageOf(error)}`;
        this.note.textContent = '';
      }
      return;
    }
    const pending = this.next ?? null;
    const { options, selected } = pickerChoices(models, pending);
    this.current = models.current_model_ref;
    this.select.replaceChildren(
      ...options.map(({ value, label }) => new Option(label, value, false, value === selected))
    );
    this.select.value = selected;
    this.select.disabled = options.length === 0;
    this.error.textContent = '';
    this.describe();
  }

  private describe(): void {
    const next = this.next;
    this.note.textContent = next ? `${next} from the next turn on` : '';
  }
}
