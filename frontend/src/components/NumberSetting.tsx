import { Field, Input } from '@grafana/ui';
import { useState } from 'react';

import { plural, validateInteger, type NumericSetting } from '../validation';

export interface NumberSettingProps {
  setting: NumericSetting;
  value: number | undefined;
  description: string;
  /** Called with a valid whole number, or undefined when the field is emptied (backend default). */
  onChange: (value: number | undefined) => void;
}

/**
 * A numeric setting that emits only values the backend accepts: a draft such as `2.5` or `5000`
 * stays in the field with its error (shown once the field is left) and is never saved.
 */
export function NumberSetting({ setting, value, description, onChange }: NumberSettingProps) {
  const [draft, setDraft] = useState(value === undefined ? '' : String(value));
  const [touched, setTouched] = useState(false);
  const [lastValue, setLastValue] = useState(value);

  // A value changed from outside (e.g. the simulator switch) replaces the draft.
  if (value !== lastValue) {
    setLastValue(value);
    if (value !== undefined || draft.trim() === '') {
      setDraft(value === undefined ? '' : String(value));
    }
  }

  const parse = (text: string): { value?: number; error?: string } => {
    const trimmed = text.trim();
    if (trimmed === '') {
      return {};
    }
    const number = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(trimmed) ? Number(trimmed) : NaN;
    const error = Number.isNaN(number)
      ? `${setting.label} must be a whole number of ${setting.unit}s${setting.per}`
      : validateInteger(number, setting.label, setting.min, setting.max, setting.unit, setting.per);
    return error ? { error } : { value: number };
  };

  const draftResult = parse(draft);
  // A saved value may stop fitting when another setting changes (e.g. the simulator is turned off).
  const savedError = validateInteger(value, setting.label, setting.min, setting.max, setting.unit, setting.per);
  const error = (touched ? draftResult.error : undefined) ?? (draft.trim() === String(value) ? savedError : undefined);
  const id = `estats-config-${setting.key}`;

  return (
    <Field
      label={`${setting.label} (${setting.unit}s${setting.per})`}
      description={`${description} ${setting.min} to ${setting.max}; empty means ${plural(setting.default, setting.unit)}.`}
      invalid={error !== undefined}
      error={error}
      htmlFor={id}
    >
      <Input
        id={id}
        width={16}
        inputMode="numeric"
        value={draft}
        placeholder={`default ${setting.default}`}
        onChange={(e) => {
          const text = e.currentTarget.value;
          setDraft(text);
          // A draft with a problem removes the setting (the backend default applies) rather than
          // leaving an earlier keystroke's value, e.g. 10 of a rejected 100, to be saved.
          const next = parse(text).value;
          if (next !== value) {
            setLastValue(next);
            onChange(next);
          }
        }}
        onBlur={() => setTouched(true)}
      />
    </Field>
  );
}
