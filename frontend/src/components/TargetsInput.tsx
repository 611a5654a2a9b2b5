import { Input, TextArea } from '@grafana/ui';
import { type KeyboardEvent, useState } from 'react';

import type { TargetType } from '../types';

interface Props {
  id: string;
  type: TargetType;
  /** The committed value, as text. */
  value: string;
  onCommit: (value: string) => void;
  invalid?: boolean;
  width?: number;
}

/** What a target field takes, shown as its placeholder. */
export const TARGETS_PLACEHOLDER: Record<TargetType, string> = {
  cpCode: '1209788, 1209789 or * for every watched CP code',
  url: 'https://www.example.com/ (one URL a line) or * for every watched URL',
};

/**
 * A free-text target field: CP codes on one line (comma separated), URLs one a line (they may
 * contain commas, never whitespace). The text is a draft until the field is left, or Enter
 * (Ctrl+Enter for URLs, where Enter starts a new line) is pressed, so no half-typed list runs.
 */
export function TargetsInput({ id, type, value, onCommit, invalid, width = 60 }: Props) {
  const [draft, setDraft] = useState(value);
  const [committed, setCommitted] = useState(value);
  // A value changed from outside (a picked target, undo, the query inspector) replaces the draft.
  if (value !== committed) {
    setCommitted(value);
    setDraft(value);
  }
  const commit = () => {
    const next = draft.trim();
    if (next !== value) {
      setCommitted(next);
      setDraft(next);
      onCommit(next);
    }
  };
  if (type === 'url') {
    const lines = Math.min(Math.max(draft.split('\n').length, 2), 8);
    return (
      <TextArea
        id={id}
        value={draft}
        rows={lines}
        cols={width}
        invalid={invalid}
        placeholder={TARGETS_PLACEHOLDER.url}
        onChange={(e) => setDraft(e.currentTarget.value)}
        onBlur={commit}
        onKeyDown={(e: KeyboardEvent<HTMLTextAreaElement>) => {
          if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
            commit();
          }
        }}
      />
    );
  }
  return (
    <Input
      id={id}
      value={draft}
      width={width}
      invalid={invalid}
      placeholder={TARGETS_PLACEHOLDER.cpCode}
      onChange={(e) => setDraft(e.currentTarget.value)}
      onBlur={commit}
      onKeyDown={(e: KeyboardEvent<HTMLInputElement>) => {
        if (e.key === 'Enter') {
          commit();
        }
      }}
    />
  );
}
