import type { DataSourcePluginOptionsEditorProps } from '@grafana/data';
import {
  Alert,
  CollapsableSection,
  Divider,
  Field,
  Input,
  RadioButtonGroup,
  SecretInput,
  Stack,
  Switch,
  Text,
} from '@grafana/ui';
import { type ReactNode, useState } from 'react';

import type { EdgercCredentials } from '../edgerc';
import { DELIVERY_OPTIONS } from '../query';
import {
  DEFAULT_EDGERC_SECTION,
  type DeliveryChoice,
  type EStatsOptions,
  type EStatsSecureJsonData,
  type SecretKey,
} from '../types';
import { HISTORY_DATABASE } from '../contract';
import {
  numericSettings,
  type NumericSetting,
  validateHistoryDatabase,
  validateHistorySchema,
  validateHost,
} from '../validation';
import { EdgercPaste } from './EdgercPaste';
import { NumberSetting } from './NumberSetting';
import { WatchListEditor } from './WatchListEditor';

export type Props = DataSourcePluginOptionsEditorProps<EStatsOptions, EStatsSecureJsonData>;

const WIDE = 60;

const SECRETS: Array<{ key: SecretKey; label: string; description: string }> = [
  { key: 'clientToken', label: 'Client token', description: 'The client_token of your EdgeGrid API client' },
  { key: 'clientSecret', label: 'Client secret', description: 'The client_secret; never shown again once saved' },
  { key: 'accessToken', label: 'Access token', description: 'The access_token of your EdgeGrid API client' },
];

const NUMBER_DESCRIPTIONS: Record<NumericSetting['key'], string> = {
  pollIntervalSeconds: 'How often each target is sampled.',
  requestTimeoutSeconds: 'Time allowed for one eStats call.',
  rateLimitPerMinute:
    'Upstream calls per minute shared by all pollers and queries; Akamai allows 40 per account, so lower it when other tools share the API client.',
  retentionHours: 'How long samples are kept per target.',
};

function Section({ title, description, children }: { title: string; description?: string; children: ReactNode }) {
  return (
    <section aria-label={title}>
      <Stack direction="column" gap={1}>
        <Text element="h3" variant="h4">
          {title}
        </Text>
        {description && (
          <Text color="secondary" variant="bodySmall">
            {description}
          </Text>
        )}
        <div>{children}</div>
      </Stack>
    </section>
  );
}

/** A text setting emitted trimmed: a path or key with a stray space would not be found. */
function TextSetting(props: {
  id: string;
  label: string;
  description: string;
  value: string | undefined;
  placeholder?: string;
  width?: number;
  /** A value with a problem stays in the field with its error, and is not saved. */
  validate?: (value: string) => string | undefined;
  onChange: (value: string | undefined) => void;
  /** Every keystroke, valid or not: for parts of the form that follow what is being typed. */
  onDraft?: (text: string) => void;
}) {
  const [draft, setDraft] = useState(props.value ?? '');
  const [touched, setTouched] = useState(false);
  const [last, setLast] = useState(props.value);
  if (props.value !== last) {
    setLast(props.value);
    if (props.value !== undefined && props.value !== draft.trim()) {
      setDraft(props.value ?? '');
    }
  }
  const problem = props.validate?.(draft.trim());
  const error = touched ? problem : undefined;
  return (
    <Field
      label={props.label}
      description={props.description}
      htmlFor={props.id}
      invalid={error !== undefined}
      error={error}
    >
      <Input
        id={props.id}
        width={props.width ?? WIDE}
        value={draft}
        placeholder={props.placeholder}
        onChange={(e) => {
          const text = e.currentTarget.value;
          setDraft(text);
          props.onDraft?.(text);
          const trimmed = text.trim();
          // A value with a problem is not saved, nor is an earlier prefix of it that happened to be valid.
          const next = trimmed === '' || props.validate?.(trimmed) !== undefined ? undefined : trimmed;
          if (next !== props.value) {
            setLast(next);
            props.onChange(next);
          }
        }}
        onBlur={() => {
          setTouched(true);
          setDraft(draft.trim());
        }}
      />
    </Field>
  );
}

export function ConfigEditor({ options, onOptionsChange }: Props) {
  const jsonData: EStatsOptions = options.jsonData ?? {};
  const secureJsonFields = options.secureJsonFields ?? {};
  const secureJsonData: EStatsSecureJsonData = options.secureJsonData ?? {};
  const simulate = jsonData.simulate === true;
  // Follows the URL as typed, not only once valid: the URL's errors point at the password field,
  // which must be there to be found.
  const [historyDatabaseTyped, setHistoryDatabaseTyped] = useState((jsonData.historyDatabase ?? '') !== '');
  const shared = historyDatabaseTyped || (jsonData.historyDatabase ?? '') !== '';
  const passwordKey = HISTORY_DATABASE.passwordField;

  const updateJsonData = (patch: Partial<EStatsOptions>) => {
    const next: EStatsOptions = { ...jsonData, ...patch };
    for (const key of Object.keys(patch) as Array<keyof EStatsOptions>) {
      if (patch[key] === undefined) {
        delete next[key];
      }
    }
    onOptionsChange({ ...options, jsonData: next });
  };

  const setSecret = (key: SecretKey, value: string) =>
    onOptionsChange({ ...options, secureJsonData: { ...secureJsonData, [key]: value } });

  const resetSecret = (key: SecretKey) =>
    onOptionsChange({
      ...options,
      secureJsonFields: { ...secureJsonFields, [key]: false },
      secureJsonData: { ...secureJsonData, [key]: '' },
    });

  const applyEdgerc = (credentials: EdgercCredentials) =>
    onOptionsChange({
      ...options,
      jsonData: { ...jsonData, host: credentials.host },
      // Marking the secrets as not configured shows the new values as pending until saved.
      secureJsonFields: { ...secureJsonFields, clientToken: false, clientSecret: false, accessToken: false },
      secureJsonData: {
        ...secureJsonData,
        clientToken: credentials.clientToken,
        clientSecret: credentials.clientSecret,
        accessToken: credentials.accessToken,
      },
    });

  return (
    <Stack direction="column" gap={1}>
      <Text color="secondary">
        Reads HTTP status-code distributions of your CP codes and URLs from Akamai Edge Diagnostics (eStats) and keeps a
        polling history for time series and alert rules.
      </Text>
      <Divider />

      <Section title="Connection">
        <Field
          label="Simulator"
          description="Serve realistic answers from the simulator built into the plugin instead of Akamai, so dashboards and alerts work without an Akamai account. Host and credentials are not used."
          htmlFor="estats-config-simulate"
        >
          <Switch
            id="estats-config-simulate"
            value={simulate}
            onChange={(e) => updateJsonData({ simulate: e.currentTarget.checked ? true : undefined })}
          />
        </Field>
        {!simulate && (
          <>
            <TextSetting
              id="estats-config-host"
              label="Host"
              description="The EdgeGrid host of your API client, e.g. akab-xxxx.luna.akamaiapis.net (https:// is implied). http://localhost:PORT or http://127.0.0.1:PORT for a local simulator."
              value={jsonData.host}
              placeholder="akab-….luna.akamaiapis.net"
              validate={validateHost}
              onChange={(host) => updateJsonData({ host })}
            />
            <TextSetting
              id="estats-config-account-switch-key"
              label="Account switch key"
              description="Optional: the account to act for when your API client manages several accounts (partners, Akamai staff)."
              value={jsonData.accountSwitchKey}
              onChange={(accountSwitchKey) => updateJsonData({ accountSwitchKey })}
            />
          </>
        )}
        <Field
          label="Default delivery network"
          description="Used by queries that leave theirs on Default. None sends no delivery network and lets Akamai pick."
        >
          <RadioButtonGroup<DeliveryChoice>
            aria-label="Default delivery network"
            options={DELIVERY_OPTIONS.map((o) => (o.value === '' ? { ...o, label: 'None' } : o))}
            value={jsonData.delivery ?? ''}
            onChange={(delivery) => updateJsonData({ delivery: delivery === '' ? undefined : delivery })}
          />
        </Field>
      </Section>
      <Divider />

      <Section title="Credentials">
        {simulate ? (
          <Alert severity="info" title="The simulator needs no credentials">
            Turn the simulator off to enter the host and the EdgeGrid credentials of your Akamai API client.
          </Alert>
        ) : (
          <>
            <EdgercPaste onApply={applyEdgerc} />
            {SECRETS.map(({ key, label, description }) => (
              <Field key={key} label={label} description={description} htmlFor={`estats-config-${key}`}>
                <SecretInput
                  id={`estats-config-${key}`}
                  width={WIDE}
                  isConfigured={Boolean(secureJsonFields[key])}
                  value={secureJsonData[key] ?? ''}
                  autoComplete="off"
                  onChange={(e) => setSecret(key, e.currentTarget.value)}
                  onReset={() => resetSecret(key)}
                />
              </Field>
            ))}
            <Text color="secondary" variant="bodySmall">
              Or leave the secrets empty and read them from an .edgerc file on the Grafana server (secrets entered above
              take precedence):
            </Text>
            <Stack direction="row" gap={2} wrap="wrap">
              <TextSetting
                id="estats-config-edgerc-path"
                label=".edgerc path"
                description="Readable by the Grafana server"
                value={jsonData.edgercPath}
                placeholder="/etc/grafana/.edgerc"
                width={40}
                onChange={(edgercPath) => updateJsonData({ edgercPath })}
              />
              <TextSetting
                id="estats-config-edgerc-section"
                label=".edgerc section"
                description="The [section] to read"
                value={jsonData.edgercSection}
                placeholder={DEFAULT_EDGERC_SECTION}
                width={18}
                onChange={(edgercSection) => updateJsonData({ edgercSection })}
              />
            </Stack>
          </>
        )}
      </Section>
      <Divider />

      <Section
        title="Watched targets"
        description="These CP codes and URLs are polled from the start, so their history is ready for dashboards and alert rules."
      >
        <WatchListEditor
          watch={jsonData.watch ?? []}
          onChange={(watch) => updateJsonData({ watch: watch.length > 0 ? watch : undefined })}
        />
      </Section>
      <Divider />

      <CollapsableSection label="Additional settings" isOpen={false}>
        <Stack direction="column" gap={2}>
          <Text color="secondary" variant="bodySmall">
            Polling, the upstream budget and the history. The defaults suit most data sources.
          </Text>
          <div>
            {numericSettings(jsonData).map((setting) => (
              <NumberSetting
                key={setting.key}
                setting={setting}
                value={jsonData[setting.key]}
                description={NUMBER_DESCRIPTIONS[setting.key]}
                onChange={(value) => updateJsonData({ [setting.key]: value })}
              />
            ))}
            <TextSetting
              id="estats-config-history-path"
              label="History file"
              description={
                shared
                  ? 'Ignored while a shared history database is set below: the history lives there instead.'
                  : 'Optional: SQLite file on the Grafana server that keeps the history across restarts. Empty keeps it in memory only.'
              }
              value={jsonData.historyPath}
              placeholder="in memory"
              onChange={(historyPath) => updateJsonData({ historyPath })}
            />
          </div>
          <Section
            title="Shared history (high availability)"
            description="For several Grafana replicas behind one load balancer. See docs/high-availability.md for the database user and schema to create."
          >
            <TextSetting
              id="estats-config-history-database"
              label="History database"
              description="Optional PostgreSQL URL. Leave empty to keep the embedded SQLite history (History file above). Grafana replicas sharing this database share one poller per target, one upstream budget and one history. Never put the password in the URL: enter it below."
              value={jsonData.historyDatabase}
              placeholder="postgres://grafana@db.example.com:5432/grafana?sslmode=verify-full"
              validate={validateHistoryDatabase}
              onDraft={(text) => setHistoryDatabaseTyped(text.trim() !== '')}
              onChange={(historyDatabase) => updateJsonData({ historyDatabase })}
            />
            {shared && (
              <>
                <Field
                  label="Database password"
                  description="Password of the database user in the URL; kept encrypted, never shown again once saved"
                  htmlFor={`estats-config-${passwordKey}`}
                >
                  <SecretInput
                    id={`estats-config-${passwordKey}`}
                    width={WIDE}
                    isConfigured={Boolean(secureJsonFields[passwordKey])}
                    value={secureJsonData[passwordKey] ?? ''}
                    autoComplete="off"
                    onChange={(e) => setSecret(passwordKey, e.currentTarget.value)}
                    onReset={() => resetSecret(passwordKey)}
                  />
                </Field>
                <TextSetting
                  id="estats-config-history-database-schema"
                  label="Database schema"
                  description={`Optional: the PostgreSQL schema holding the history, so several Grafana installations can share one database. Lower-case letters, digits and _, at most ${HISTORY_DATABASE.maxSchemaChars}.`}
                  value={jsonData.historyDatabaseSchema}
                  placeholder={HISTORY_DATABASE.defaultSchema}
                  width={30}
                  validate={validateHistorySchema}
                  onChange={(historyDatabaseSchema) => updateJsonData({ historyDatabaseSchema })}
                />
              </>
            )}
          </Section>
        </Stack>
      </CollapsableSection>
    </Stack>
  );
}
