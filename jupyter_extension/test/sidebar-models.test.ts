/**
 * The sidebar's model picker: which choices it offers and which one it selects.
 */
import { pickerChoices } from '../src/sidebar/models';

const models = {
  agent: 'root',
  current_model_ref: 'fast',
  models: [
    { ref: 'fast', name: 'fast', is_default: true, is_current: true },
    { ref: 'openai/gpt-4o', name: '', is_default: false, is_current: false }
  ]
};

describe('the model picker', () => {
  it('offers the server’s models, the default marked, the current one selected', () => {
    expect(pickerChoices(models, null)).toEqual({
      options: [
        { value: 'fast', label: 'fast (default)' },
        { value: 'openai/gpt-4o', label: 'openai/gpt-4o' }
      ],
      selected: 'fast'
    });
  });

  it('keeps the user’s pick for the next turn when the list is read again', () => {
    expect(pickerChoices(models, 'openai/gpt-4o').selected).toBe('openai/gpt-4o');
  });

  it('falls back to the current model when the pick is no longer offered', () => {
    expect(pickerChoices(models, 'gone/model').selected).toBe('fast');
  });
});
