import { Alert, Box, Button, Field, Input, SecretTextArea, Stack } from '@grafana/ui';
import { useState } from 'react';

import { type EdgercCredentials, parseEdgerc } from '../edgerc';
import { DEFAULT_EDGERC_SECTION } from '../types';

export interface EdgercPasteProps {
  onApply: (credentials: EdgercCredentials) => void;
}

interface Outcome {
  applied: boolean;
  section?: string;
  /** Notes of an applied paste, or the problems of a refused one (never both: stale notes mislead). */
  messages: string[];
}

/**
 * Reads a pasted `.edgerc` section in the browser and fills host and secrets. The box is masked,
 * and emptied after every attempt, successful or not, so the secrets never linger on screen; the
 * messages name lines and keys, never values.
 */
export function EdgercPaste({ onApply }: EdgercPasteProps) {
  const [text, setText] = useState('');
  const [section, setSection] = useState(DEFAULT_EDGERC_SECTION);
  const [outcome, setOutcome] = useState<Outcome | undefined>();

  const apply = () => {
    const result = parseEdgerc(text, section);
    setText('');
    if (result.credentials) {
      onApply(result.credentials);
      setOutcome({ applied: true, section: result.section, messages: result.warnings });
    } else {
      setOutcome({ applied: false, section: result.section, messages: result.errors });
    }
  };

  const sectionLabel = outcome?.section ? `[${outcome.section}]` : 'the pasted lines';

  return (
    <Stack direction="column" gap={0}>
      <Field
        label="Paste an .edgerc section"
        description="Read in your browser: host and the three secrets below are filled in, and nothing is sent until you save. The box is emptied after each attempt. With several sections, the one named below is read."
      >
        <SecretTextArea
          id="estats-edgerc-paste"
          aria-label="Paste .edgerc section"
          rows={5}
          cols={60}
          value={text}
          isConfigured={false}
          onReset={() => setText('')}
          spellCheck={false}
          autoComplete="off"
          placeholder={'[default]\nclient_secret = …\nhost = …\naccess_token = …\nclient_token = …'}
          onChange={(e) => setText(e.currentTarget.value)}
        />
      </Field>
      <Stack direction="row" gap={1} alignItems="flex-end">
        <Field label="Section to read" htmlFor="estats-edgerc-paste-section">
          <Input
            id="estats-edgerc-paste-section"
            width={20}
            value={section}
            onChange={(e) => setSection(e.currentTarget.value)}
          />
        </Field>
        <Box marginBottom={2}>
          <Button variant="secondary" icon="import" onClick={apply} disabled={text.trim() === ''}>
            Fill in host and secrets
          </Button>
        </Box>
      </Stack>
      {outcome && (
        <Alert
          severity={!outcome.applied ? 'error' : outcome.messages.length > 0 ? 'warning' : 'success'}
          title={
            outcome.applied
              ? `Host and secrets filled in from ${sectionLabel}${outcome.messages.length > 0 ? ', with notes' : ''}`
              : 'Nothing was filled in: fix the .edgerc text and paste it again'
          }
          onRemove={() => setOutcome(undefined)}
        >
          {outcome.messages.length > 0 && (
            <ul aria-label={outcome.applied ? '.edgerc notes' : '.edgerc problems'}>
              {outcome.messages.map((message) => (
                <li key={message}>{message}</li>
              ))}
            </ul>
          )}
        </Alert>
      )}
    </Stack>
  );
}
