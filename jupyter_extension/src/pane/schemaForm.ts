/**
 * Elicitation forms from their JSON schema (MCP's flat subset): a top-level object whose
 * properties are strings, numbers, integers, booleans or enums, some required.
 *
 * `formFields` reads the schema, `validate` turns what the user typed into the typed content
 * the server expects, or into one message per field that is wrong. Both are pure.
 */

export type FieldKind = 'string' | 'number' | 'integer' | 'boolean' | 'enum';

export interface FormField {
  name: string;
  kind: FieldKind;
  label: string;
  description: string;
  required: boolean;
  /** Enum values, and the labels shown for them (`enumNames`, or the values). */
  options: unknown[];
  optionLabels: string[];
  default: unknown;
  minimum: number | null;
  maximum: number | null;
  minLength: number | null;
  maxLength: number | null;
  pattern: string | null;
}

/** What an input holds: text for text, number and enum fields (an option's index), or a check. */
export type RawValue = string | boolean;

export interface Validation {
  content: Record<string, unknown>;
  errors: Record<string, string>;
}

export function formFields(schema: Record<string, unknown>): {
  fields: FormField[];
  problems: string[];
} {
  const fields: FormField[] = [];
  const problems: string[] = [];
  const properties = isObject(schema.properties) ? schema.properties : {};
  const required = new Set(Array.isArray(schema.required) ? schema.required.map(String) : []);
  for (const [name, raw] of Object.entries(properties)) {
    if (!isObject(raw)) {
      problems.push(`${name}: not a schema`);
      continue;
    }
    const enumValues = Array.isArray(raw.enum) ? raw.enum : null;
    const type = String(raw.type ?? (enumValues ? 'string' : ''));
    let kind: FieldKind;
    if (enumValues) {
      kind = 'enum';
    } else if (['string', 'number', 'integer', 'boolean'].includes(type)) {
      kind = type as FieldKind;
    } else {
      problems.push(`${name}: type ${JSON.stringify(raw.type ?? null)} cannot be shown as a field`);
      continue;
    }
    const names = Array.isArray(raw.enumNames) ? raw.enumNames.map(String) : [];
    fields.push({
      name,
      kind,
      label: typeof raw.title === 'string' && raw.title ? raw.title : name,
      description: typeof raw.description === 'string' ? raw.description : '',
      required: required.has(name),
      options: enumValues ?? [],
      optionLabels: (enumValues ?? []).map((v, i) => names[i] ?? String(v)),
      default: raw.default,
      minimum: num(raw.minimum),
      maximum: num(raw.maximum),
      minLength: num(raw.minLength),
      maxLength: num(raw.maxLength),
      pattern: typeof raw.pattern === 'string' ? raw.pattern : null
    });
  }
  for (const name of required) {
    if (!(name in properties)) {
      problems.push(`${name}: required but not described`);
    }
  }
  return { fields, problems };
}

export function validate(fields: FormField[], raw: Record<string, RawValue>): Validation {
  const content: Record<string, unknown> = {};
  const errors: Record<string, string> = {};
  for (const field of fields) {
    const value = raw[field.name];
    if (field.kind === 'boolean') {
      content[field.name] = value === true;
      continue;
    }
    const text = typeof value === 'string' ? value.trim() : '';
    if (text === '') {
      if (field.required) {
        errors[field.name] = 'Required.';
      }
      continue;
    }
    const problem = check(field, text, value as string, content);
    if (problem) {
      errors[field.name] = problem;
    }
  }
  return { content, errors };
}

/** Check one filled-in field (`text` is `original` trimmed); store its typed value if valid. */
function check(
  field: FormField,
  text: string,
  original: string,
  content: Record<string, unknown>
): string {
  switch (field.kind) {
    case 'enum': {
      const index = Number(text);
      if (!Number.isInteger(index) || index < 0 || index >= field.options.length) {
        return 'Choose one of the options.';
      }
      content[field.name] = field.options[index];
      return '';
    }
    case 'number':
    case 'integer': {
      const value = Number(text);
      if (!Number.isFinite(value)) {
        return 'Enter a number.';
      }
      if (field.kind === 'integer' && !Number.isInteger(value)) {
        return 'Enter a whole number.';
      }
      if (field.minimum !== null && value < field.minimum) {
        return `At least ${field.minimum}.`;
      }
      if (field.maximum !== null && value > field.maximum) {
        return `At most ${field.maximum}.`;
      }
      content[field.name] = value;
      return '';
    }
    default: {
      if (field.minLength !== null && original.length < field.minLength) {
        return `At least ${field.minLength} characters.`;
      }
      if (field.maxLength !== null && original.length > field.maxLength) {
        return `At most ${field.maxLength} characters.`;
      }
      if (field.pattern !== null && !safeTest(field.pattern, original)) {
        return `Must match ${field.pattern}.`;
      }
      content[field.name] = original;
      return '';
    }
  }
}

function safeTest(pattern: string, text: string): boolean {
  try {
    return new RegExp(pattern, 'u').test(text);
  } catch {
    return true; // a pattern this browser cannot read is left to the server to check
  }
}

function num(value: unknown): number | null {
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
