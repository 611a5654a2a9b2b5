import { Alert, Button, InlineField, InlineFieldRow, Input, Stack, TextArea } from '@grafana/ui';
import { useState } from 'react';

import { type EdgercCredentials, parseEdgerc } from '../edgerc';

export interface EdgercPasteProps {
  onApply: (credentials: EdgercCredentials) => void;
  labelWidth: number;
}

interface Outcome {
  applied: boolean;
  section?: string;
  warnings: string[];
  errors: string[];
}

/**
 * Reads a pasted `.edgerc` section in the browser and fills host and secrets. The pasted text is
 * cleared once used so the secrets do not linger in the form.
 */
export function EdgercPaste({ onApply, labelWidth }: EdgercPasteProps) {
  const [text, setText] = useState('');
  const [section, setSection] = useState('default');
  const [outcome, setOutcome] = useState<Outcome | undefined>();

  const apply = () => {
    const result = parseEdgerc(text, section);
    if (result.credentials) {
      onApply(result.credentials);
      setText('');
    }
    setOutcome({
      applied: result.credentials !== undefined,
      section: result.section,
      warnings: result.warnings,
      errors: result.errors,
    });
  };

  const sectionLabel = outcome?.section ? `[${outcome.section}]` : 'the pasted lines';

  return (
    <Stack direction="column" gap={0}>
      <InlineFieldRow>
        <InlineField
          label="Paste .edgerc section"
          labelWidth={labelWidth}
          htmlFor="estats-edgerc-paste"
          tooltip="Paste a section of your .edgerc file ([default] with host, client_token, client_secret and access_token). It is read in your browser; host and the three secrets below are filled in, and nothing is sent until you save."
          grow
        >
          <TextArea
            id="estats-edgerc-paste"
            rows={6}
            value={text}
            spellCheck={false}
            autoComplete="off"
            placeholder={
              '[default]\nclient_secret = ...\nhost = akab-xxxx.luna.akamaiapis.net\naccess_token = akab-...\nclient_token = akab-...'
            }
            onChange={(e) => setText(e.currentTarget.value)}
          />
        </InlineField>
      </InlineFieldRow>
      <InlineFieldRow>
        <InlineField
          label="Section to read"
          labelWidth={labelWidth}
          htmlFor="estats-edgerc-paste-section"
          tooltip="Which [section] to read when the pasted text has several. A single pasted section is read whatever its name."
        >
          <Input
            id="estats-edgerc-paste-section"
            width={20}
            value={section}
            onChange={(e) => setSection(e.currentTarget.value)}
          />
        </InlineField>
        <Button variant="secondary" icon="import" onClick={apply} disabled={text.trim() === ''}>
          Fill in host and secrets
        </Button>
      </InlineFieldRow>
      {outcome && outcome.applied && (
        <Alert
          severity={outcome.warnings.length > 0 ? 'warning' : 'success'}
          title={`Host and secrets filled in from ${sectionLabel}${outcome.warnings.length > 0 ? ', with notes' : ''}`}
          onRemove={() => setOutcome(undefined)}
        >
          {outcome.warnings.length > 0 && (
            <ul aria-label=".edgerc notes">
              {outcome.warnings.map((w) => (
                <li key={w}>{w}</li>
              ))}
            </ul>
          )}
        </Alert>
      )}
      {outcome && !outcome.applied && (
        <Alert
          severity="error"
          title="Nothing was filled in: fix the .edgerc text and try again"
          onRemove={() => setOutcome(undefined)}
        >
          <ul aria-label=".edgerc problems">
            {[...outcome.errors, ...outcome.warnings].map((message) => (
              <li key={message}>{message}</li>
            ))}
          </ul>
        </Alert>
      )}
    </Stack>
  );
}
