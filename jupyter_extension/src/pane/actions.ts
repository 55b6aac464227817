/**
 * What a pane can ask of the session: the REST routes that answer prompts and stop a turn.
 * Direct mode implements them with `fetch`, relay mode with messages to the kernel, and the
 * JupyterLab sidebar with its server connection.
 */

export interface ResumeBody {
  confirmation: 'approve' | 'approve-session' | 'approve-tool' | 'reject';
  reason?: string;
  tool_name?: string;
}

export interface ElicitationBody {
  action: 'accept' | 'decline' | 'cancel';
  content?: Record<string, unknown>;
  elicitation_id?: string;
}

export interface PaneActions {
  /** POST .../resume: answer the pending tool call (or max-iterations) confirmation. */
  resume(body: ResumeBody): Promise<void>;
  /** POST .../elicitation: answer the pending form. */
  elicitation(body: ElicitationBody): Promise<void>;
  /** POST .../cancel: stop the running turn. */
  cancel(): Promise<void>;
}

/** A refused request, with the server's SPEC error code and its sentence for a person. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string
  ) {
    super(message);
    this.name = 'ApiError';
  }
}
