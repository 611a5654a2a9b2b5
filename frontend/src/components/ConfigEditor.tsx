import type { DataSourcePluginOptionsEditorProps } from '@grafana/data';
import {
  FieldSet,
  InlineField,
  InlineFieldRow,
  InlineSwitch,
  Input,
  RadioButtonGroup,
  SecretInput,
  Stack,
  Text,
} from '@grafana/ui';
import type { ChangeEvent } from 'react';

import type { EdgercCredentials } from '../edgerc';
import { DELIVERY_OPTIONS } from '../query';
import {
  type DeliveryChoice,
  type EStatsOptions,
  type EStatsSecureJsonData,
  LIMITS,
  type SecretKey,
  SETTINGS_DEFAULTS,
} from '../types';
import { minPollInterval, validateSettings } from '../validation';
import { EdgercPaste } from './EdgercPaste';
import { WatchListEditor } from './WatchListEditor';

export type Props = DataSourcePluginOptionsEditorProps<EStatsOptions, EStatsSecureJsonData>;

const LABEL_WIDTH = 26;
const INPUT_WIDTH = 40;

const SECRETS: Array<{ key: SecretKey; label: string; tooltip: string; placeholder: string }> = [
  {
    key: 'clientToken',
    label: 'Client token',
    tooltip: 'client_token of your EdgeGrid API client (Identity and Access Management). Stored encrypted.',
    placeholder: 'akab-...',
  },
  {
    key: 'clientSecret',
    label: 'Client secret',
    tooltip: 'client_secret of your EdgeGrid API client. Stored encrypted and never shown again.',
    placeholder: 'client secret',
  },
  {
    key: 'accessToken',
    label: 'Access token',
    tooltip: 'access_token of your EdgeGrid API client. Stored encrypted.',
    placeholder: 'akab-...',
  },
];

/** Parses a number field; an empty field removes the key so the backend default applies. */
function numberOrUndefined(text: string): number | undefined {
  const trimmed = text.trim();
  if (trimmed === '') {
    return undefined;
  }
  const value = Number(trimmed);
  return Number.isNaN(value) ? undefined : value;
}

export function ConfigEditor({ options, onOptionsChange }: Props) {
  const jsonData: EStatsOptions = options.jsonData ?? {};
  const secureJsonFields = options.secureJsonFields ?? {};
  const secureJsonData: EStatsSecureJsonData = options.secureJsonData ?? {};
  const errors = validateSettings(jsonData);

  const updateJsonData = (patch: Partial<EStatsOptions>) => {
    const next: EStatsOptions = { ...jsonData, ...patch };
    for (const key of Object.keys(patch) as Array<keyof EStatsOptions>) {
      if (patch[key] === undefined) {
        delete next[key];
      }
    }
    onOptionsChange({ ...options, jsonData: next });
  };

  const text = (key: 'host' | 'accountSwitchKey' | 'edgercPath' | 'edgercSection' | 'historyPath') => ({
    value: jsonData[key] ?? '',
    onChange: (e: ChangeEvent<HTMLInputElement>) => {
      const value = e.currentTarget.value;
      updateJsonData({ [key]: key === 'historyPath' || key === 'edgercPath' ? value : value.trim() });
    },
  });

  const numeric = (key: 'pollIntervalSeconds' | 'requestTimeoutSeconds' | 'rateLimitPerMinute' | 'retentionHours') => ({
    type: 'number',
    value: jsonData[key] ?? '',
    placeholder: String(SETTINGS_DEFAULTS[key]),
    onChange: (e: ChangeEvent<HTMLInputElement>) => updateJsonData({ [key]: numberOrUndefined(e.currentTarget.value) }),
  });

  const setSecret = (key: SecretKey) => (e: ChangeEvent<HTMLInputElement>) =>
    onOptionsChange({ ...options, secureJsonData: { ...secureJsonData, [key]: e.currentTarget.value } });

  const resetSecret = (key: SecretKey) => () =>
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

  const simulate = jsonData.simulate === true;
  const minPoll = minPollInterval(jsonData);

  return (
    <Stack direction="column" gap={2}>
      <FieldSet label="Connection">
        <InlineFieldRow>
          <InlineField
            label="Simulator"
            labelWidth={LABEL_WIDTH}
            htmlFor="estats-config-simulate"
            tooltip="Serve answers from the eStats simulator built into the plugin instead of Akamai."
          >
            <InlineSwitch
              id="estats-config-simulate"
              value={simulate}
              onChange={(e) => updateJsonData({ simulate: e.currentTarget.checked ? true : undefined })}
            />
          </InlineField>
        </InlineFieldRow>
        <Text color="secondary" variant="bodySmall">
          The simulator generates realistic eStats samples inside the plugin, so dashboards and alerts work without an
          Akamai account; host and credentials are then ignored.
        </Text>
        <InlineFieldRow>
          <InlineField
            label="Host"
            labelWidth={LABEL_WIDTH}
            htmlFor="estats-config-host"
            tooltip="The EdgeGrid host of your API client, without https://, e.g. akab-xxxx.luna.akamaiapis.net. http://127.0.0.1:PORT is accepted for local simulators."
            invalid={errors.host !== undefined}
            error={errors.host}
            disabled={simulate}
          >
            <Input
              id="estats-config-host"
              width={INPUT_WIDTH}
              placeholder="akab-xxxx.luna.akamaiapis.net"
              {...text('host')}
            />
          </InlineField>
        </InlineFieldRow>
        <InlineFieldRow>
          <InlineField
            label="Account switch key"
            labelWidth={LABEL_WIDTH}
            htmlFor="estats-config-account-switch-key"
            tooltip="Optional: the account to act for when your API client can manage several accounts (partners, Akamai staff)."
          >
            <Input
              id="estats-config-account-switch-key"
              width={INPUT_WIDTH}
              placeholder="optional, e.g. 1-5C0YLB:1-8BYUX"
              {...text('accountSwitchKey')}
            />
          </InlineField>
        </InlineFieldRow>
        <InlineFieldRow>
          <InlineField
            label="Default delivery network"
            labelWidth={LABEL_WIDTH}
            tooltip="Delivery network used by queries that leave theirs on Default. Default here lets Akamai pick."
          >
            <RadioButtonGroup<DeliveryChoice>
              options={DELIVERY_OPTIONS.map((o) =>
                o.value === '' ? { ...o, label: 'None', description: 'Send no delivery network' } : o
              )}
              value={jsonData.delivery ?? ''}
              onChange={(delivery) => updateJsonData({ delivery: delivery === '' ? undefined : delivery })}
            />
          </InlineField>
        </InlineFieldRow>
      </FieldSet>

      <FieldSet label="Credentials">
        <EdgercPaste onApply={applyEdgerc} labelWidth={LABEL_WIDTH} />
        {SECRETS.map(({ key, label, tooltip, placeholder }) => (
          <InlineFieldRow key={key}>
            <InlineField
              label={label}
              labelWidth={LABEL_WIDTH}
              htmlFor={`estats-config-${key}`}
              tooltip={tooltip}
              disabled={simulate}
            >
              <SecretInput
                id={`estats-config-${key}`}
                width={INPUT_WIDTH}
                placeholder={placeholder}
                isConfigured={Boolean(secureJsonFields[key])}
                value={secureJsonData[key] ?? ''}
                autoComplete="off"
                onChange={setSecret(key)}
                onReset={resetSecret(key)}
              />
            </InlineField>
          </InlineFieldRow>
        ))}
        <Text color="secondary" variant="bodySmall">
          Alternatively, leave the secrets empty and read them from an .edgerc file on the Grafana server:
        </Text>
        <InlineFieldRow>
          <InlineField
            label=".edgerc path"
            labelWidth={LABEL_WIDTH}
            htmlFor="estats-config-edgerc-path"
            tooltip="Optional: path of an .edgerc file on the Grafana server (readable by Grafana). Secrets entered above take precedence."
          >
            <Input
              id="estats-config-edgerc-path"
              width={INPUT_WIDTH}
              placeholder="e.g. /etc/grafana/.edgerc"
              {...text('edgercPath')}
            />
          </InlineField>
          <InlineField
            label="Section"
            labelWidth={10}
            htmlFor="estats-config-edgerc-section"
            tooltip="The [section] of the .edgerc file to read."
          >
            <Input
              id="estats-config-edgerc-section"
              width={16}
              placeholder={SETTINGS_DEFAULTS.edgercSection}
              {...text('edgercSection')}
            />
          </InlineField>
        </InlineFieldRow>
      </FieldSet>

      <FieldSet label="Polling and history">
        <InlineFieldRow>
          <InlineField
            label="Poll interval (s)"
            labelWidth={LABEL_WIDTH}
            htmlFor="estats-config-poll-interval"
            tooltip={`How often each target is sampled. At least ${LIMITS.pollIntervalMinSeconds} s against Akamai (${LIMITS.pollIntervalMinSecondsLocal} s with the simulator); default ${SETTINGS_DEFAULTS.pollIntervalSeconds} s.`}
            invalid={errors.pollIntervalSeconds !== undefined}
            error={errors.pollIntervalSeconds}
          >
            <Input
              id="estats-config-poll-interval"
              width={16}
              min={minPoll}
              step={1}
              {...numeric('pollIntervalSeconds')}
            />
          </InlineField>
        </InlineFieldRow>
        <InlineFieldRow>
          <InlineField
            label="Request timeout (s)"
            labelWidth={LABEL_WIDTH}
            htmlFor="estats-config-request-timeout"
            tooltip={`Time allowed for one eStats call, ${LIMITS.requestTimeoutMinSeconds}-${LIMITS.requestTimeoutMaxSeconds} s; default ${SETTINGS_DEFAULTS.requestTimeoutSeconds} s.`}
            invalid={errors.requestTimeoutSeconds !== undefined}
            error={errors.requestTimeoutSeconds}
          >
            <Input
              id="estats-config-request-timeout"
              width={16}
              min={LIMITS.requestTimeoutMinSeconds}
              max={LIMITS.requestTimeoutMaxSeconds}
              step={1}
              {...numeric('requestTimeoutSeconds')}
            />
          </InlineField>
        </InlineFieldRow>
        <InlineFieldRow>
          <InlineField
            label="Rate limit (per minute)"
            labelWidth={LABEL_WIDTH}
            htmlFor="estats-config-rate-limit"
            tooltip={`Upstream calls per minute shared by all pollers and queries of this data source, ${LIMITS.rateLimitMin}-${LIMITS.rateLimitMax}. Akamai allows 40 per minute per account: lower it when other tools share the API client.`}
            invalid={errors.rateLimitPerMinute !== undefined}
            error={errors.rateLimitPerMinute}
          >
            <Input
              id="estats-config-rate-limit"
              width={16}
              min={LIMITS.rateLimitMin}
              max={LIMITS.rateLimitMax}
              step={1}
              {...numeric('rateLimitPerMinute')}
            />
          </InlineField>
        </InlineFieldRow>
        <InlineFieldRow>
          <InlineField
            label="Retention (h)"
            labelWidth={LABEL_WIDTH}
            htmlFor="estats-config-retention"
            tooltip={`How long samples are kept per target, ${LIMITS.retentionMinHours}-${LIMITS.retentionMaxHours} hours; default ${SETTINGS_DEFAULTS.retentionHours} h (one week).`}
            invalid={errors.retentionHours !== undefined}
            error={errors.retentionHours}
          >
            <Input
              id="estats-config-retention"
              width={16}
              min={LIMITS.retentionMinHours}
              max={LIMITS.retentionMaxHours}
              step={1}
              {...numeric('retentionHours')}
            />
          </InlineField>
        </InlineFieldRow>
        <InlineFieldRow>
          <InlineField
            label="History file"
            labelWidth={LABEL_WIDTH}
            htmlFor="estats-config-history-path"
            tooltip="Optional: SQLite file on the Grafana server that keeps the history across restarts. Empty keeps it in memory only."
          >
            <Input
              id="estats-config-history-path"
              width={INPUT_WIDTH}
              placeholder="in memory; e.g. /var/lib/grafana/estats.db"
              {...text('historyPath')}
            />
          </InlineField>
        </InlineFieldRow>
      </FieldSet>

      <FieldSet label="Watched targets">
        <Text color="secondary" variant="bodySmall">
          These CP codes and URLs are polled from the start, so their history is ready for dashboards and alert rules.
        </Text>
        <WatchListEditor
          watch={jsonData.watch ?? []}
          onChange={(watch) => updateJsonData({ watch: watch.length > 0 ? watch : undefined })}
        />
      </FieldSet>
    </Stack>
  );
}
