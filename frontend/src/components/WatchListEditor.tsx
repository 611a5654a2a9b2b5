import type { SelectableValue } from '@grafana/data';
import { Button, IconButton, InlineField, InlineFieldRow, Input, RadioButtonGroup, Stack, Text } from '@grafana/ui';

import type { Delivery, TargetType, WatchTarget } from '../types';
import { duplicateWatchTargets, validateWatchTarget } from '../validation';

export interface WatchListEditorProps {
  watch: WatchTarget[];
  onChange: (watch: WatchTarget[]) => void;
}

type WatchDelivery = Delivery | 'any';
const WATCH_DELIVERY_OPTIONS: Array<SelectableValue<WatchDelivery>> = [
  { label: 'Default', value: 'any', description: 'No delivery network in the request' },
  { label: 'Standard TLS', value: 'STANDARD_TLS' },
  { label: 'Enhanced TLS', value: 'ENHANCED_TLS' },
];

const TYPE_OPTIONS: Array<SelectableValue<TargetType>> = [
  { label: 'CP code', value: 'cpCode' },
  { label: 'URL', value: 'url' },
];

function typeOf(target: WatchTarget): TargetType {
  return target.url !== undefined ? 'url' : 'cpCode';
}

/** CP codes are stored as numbers when they are plain digits, as the backend's examples show. */
function cpCodeValue(text: string): number | string {
  const trimmed = text.trim();
  return /^[1-9]\d*$/.test(trimmed) && Number.isSafeInteger(Number(trimmed)) ? Number(trimmed) : trimmed;
}

function withDelivery(target: WatchTarget, delivery: Delivery | undefined): WatchTarget {
  const { delivery: _old, ...rest } = target;
  return delivery ? { ...rest, delivery } : rest;
}

/** Targets polled from the first request on, so their history starts before anyone looks. */
export function WatchListEditor({ watch, onChange }: WatchListEditorProps) {
  const duplicates = duplicateWatchTargets(watch);

  const replace = (index: number, target: WatchTarget) =>
    onChange(watch.map((existing, i) => (i === index ? target : existing)));
  const remove = (index: number) => onChange(watch.filter((_, i) => i !== index));

  return (
    <Stack direction="column" gap={1}>
      {watch.length === 0 && (
        <Text color="secondary" variant="bodySmall">
          No watched targets: targets are polled from the first query that asks for them.
        </Text>
      )}
      {watch.map((target, index) => {
        const type = typeOf(target);
        const row = index + 1;
        const error = validateWatchTarget(target) ?? duplicates.get(index);
        const valueId = `estats-watch-${index}-value`;
        return (
          <InlineFieldRow key={index} aria-label={`Watched target ${row}`} role="group">
            <InlineField label="Type" labelWidth={8} tooltip="Watch a CP code or a single URL.">
              <RadioButtonGroup<TargetType>
                options={TYPE_OPTIONS}
                value={type}
                onChange={(next) => {
                  if (next !== type) {
                    const base: WatchTarget = next === 'url' ? { url: '' } : { cpCode: '' };
                    replace(index, withDelivery(base, target.delivery));
                  }
                }}
              />
            </InlineField>
            <InlineField
              label={type === 'url' ? 'URL' : 'CP code'}
              labelWidth={10}
              htmlFor={valueId}
              tooltip={type === 'url' ? 'An absolute http(s) URL served by Akamai.' : 'Digits only, e.g. 1209788.'}
              invalid={error !== undefined}
              error={error}
            >
              <Input
                id={valueId}
                aria-label={`Watched target ${row} ${type === 'url' ? 'URL' : 'CP code'}`}
                width={36}
                value={type === 'url' ? (target.url ?? '') : String(target.cpCode ?? '')}
                placeholder={type === 'url' ? 'https://www.example.com/' : '1209788'}
                onChange={(e) => {
                  const text = e.currentTarget.value;
                  replace(
                    index,
                    type === 'url' ? { ...target, url: text.trim() } : { ...target, cpCode: cpCodeValue(text) }
                  );
                }}
              />
            </InlineField>
            <InlineField
              label="Delivery"
              labelWidth={10}
              tooltip="Delivery network to diagnose. Default sends none and lets Akamai pick."
            >
              <RadioButtonGroup<WatchDelivery>
                options={WATCH_DELIVERY_OPTIONS}
                value={target.delivery ?? 'any'}
                onChange={(delivery) => replace(index, withDelivery(target, delivery === 'any' ? undefined : delivery))}
              />
            </InlineField>
            <IconButton name="trash-alt" tooltip={`Remove watched target ${row}`} onClick={() => remove(index)} />
          </InlineFieldRow>
        );
      })}
      <Stack direction="row" gap={1}>
        <Button icon="plus" variant="secondary" size="sm" onClick={() => onChange([...watch, { cpCode: '' }])}>
          Add CP code
        </Button>
        <Button icon="plus" variant="secondary" size="sm" onClick={() => onChange([...watch, { url: '' }])}>
          Add URL
        </Button>
      </Stack>
    </Stack>
  );
}
