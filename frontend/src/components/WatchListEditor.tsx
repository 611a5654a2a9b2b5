import { css } from '@emotion/css';
import type { GrafanaTheme2, SelectableValue } from '@grafana/data';
import { Button, IconButton, Input, RadioButtonGroup, Stack, Text, useStyles2 } from '@grafana/ui';
import { useState } from 'react';

import type { Delivery, TargetType, WatchTarget } from '../types';
import { duplicateWatchTargets, validateWatchTarget } from '../validation';

export interface WatchListEditorProps {
  watch: WatchTarget[];
  onChange: (watch: WatchTarget[]) => void;
}

type WatchDelivery = Delivery | 'any';
const WATCH_DELIVERY_OPTIONS: Array<SelectableValue<WatchDelivery>> = [
  { label: 'Default', value: 'any' },
  { label: 'Standard TLS', value: 'STANDARD_TLS' },
  { label: 'Enhanced TLS', value: 'ENHANCED_TLS' },
];

const TYPE_OPTIONS: Array<SelectableValue<TargetType>> = [
  { label: 'CP code', value: 'cpCode' },
  { label: 'URL', value: 'url' },
];

/** One row as typed: the text stays whatever its type, so switching type never loses it. */
interface Row {
  type: TargetType;
  text: string;
  delivery?: Delivery;
  /** Errors show once the value field has been left, not on a new empty row. */
  touched: boolean;
}

function toRow(target: WatchTarget): Row {
  const type: TargetType = target.url !== undefined ? 'url' : 'cpCode';
  const text = type === 'url' ? (target.url ?? '') : String(target.cpCode ?? '');
  return { type, text, delivery: target.delivery, touched: true };
}

/** CP codes are stored as numbers when they are plain digits, as the backend's examples show. */
function toTarget(row: Row): WatchTarget {
  const text = row.text.trim();
  const base: WatchTarget =
    row.type === 'url'
      ? { url: text }
      : { cpCode: /^[1-9]\d*$/.test(text) && Number.isSafeInteger(Number(text)) ? Number(text) : text };
  return row.delivery ? { ...base, delivery: row.delivery } : base;
}

function sameList(a: WatchTarget[], b: WatchTarget[]): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * Targets polled from the first request on, as a table with fixed columns. Only complete, valid,
 * distinct rows are saved: a draft row stays on screen with its error under it.
 */
export function WatchListEditor({ watch, onChange }: WatchListEditorProps) {
  const styles = useStyles2(getStyles);
  const [rows, setRows] = useState<Row[]>(() => watch.map(toRow));
  const [emitted, setEmitted] = useState<WatchTarget[]>(watch);

  // A list changed from outside (another editor, a reload) replaces the rows.
  if (!sameList(watch, emitted)) {
    setEmitted(watch);
    setRows(watch.map(toRow));
  }

  const targets = rows.map(toTarget);
  const duplicates = duplicateWatchTargets(targets);
  const errors = targets.map((target, index) => validateWatchTarget(target) ?? duplicates.get(index));

  const update = (next: Row[]) => {
    setRows(next);
    const nextTargets = next.map(toTarget);
    const nextDuplicates = duplicateWatchTargets(nextTargets);
    const valid = nextTargets.filter((t, i) => validateWatchTarget(t) === undefined && !nextDuplicates.has(i));
    if (!sameList(valid, emitted)) {
      setEmitted(valid);
      onChange(valid);
    }
  };
  const patch = (index: number, change: Partial<Row>) =>
    update(rows.map((row, i) => (i === index ? { ...row, ...change } : row)));

  return (
    <Stack direction="column" gap={1}>
      {rows.length === 0 ? (
        <Text color="secondary" variant="bodySmall">
          No watched targets: targets are polled from the first query that asks for them.
        </Text>
      ) : (
        <table className={styles.table} aria-label="Watched targets">
          <thead>
            <tr>
              <th className={styles.type}>Type</th>
              <th>CP code or URL</th>
              <th className={styles.delivery}>Delivery</th>
              <th className={styles.remove}>
                <span className={styles.hidden}>Remove</span>
              </th>
            </tr>
          </thead>
          {rows.map((row, index) => {
            const n = index + 1;
            const error = row.touched ? errors[index] : undefined;
            const errorId = `estats-watch-${index}-error`;
            return (
              <tbody key={index} aria-label={`Watched target ${n}`}>
                <tr>
                  <td>
                    <RadioButtonGroup<TargetType>
                      aria-label={`Watched target ${n} type`}
                      size="sm"
                      options={TYPE_OPTIONS}
                      value={row.type}
                      onChange={(type) => patch(index, { type })}
                    />
                  </td>
                  <td>
                    <Input
                      aria-label={`Watched target ${n} ${row.type === 'url' ? 'URL' : 'CP code'}`}
                      aria-describedby={error ? errorId : undefined}
                      invalid={error !== undefined}
                      value={row.text}
                      placeholder={row.type === 'url' ? 'https://…' : 'digits'}
                      onChange={(e) => patch(index, { text: e.currentTarget.value })}
                      onBlur={() => !row.touched && patch(index, { touched: true })}
                    />
                  </td>
                  <td>
                    <RadioButtonGroup<WatchDelivery>
                      aria-label={`Watched target ${n} delivery`}
                      size="sm"
                      options={WATCH_DELIVERY_OPTIONS}
                      value={row.delivery ?? 'any'}
                      onChange={(delivery) => patch(index, { delivery: delivery === 'any' ? undefined : delivery })}
                    />
                  </td>
                  <td>
                    <IconButton
                      name="trash-alt"
                      tooltip={`Remove watched target ${n}`}
                      onClick={() => update(rows.filter((_, i) => i !== index))}
                    />
                  </td>
                </tr>
                {error && (
                  <tr>
                    <td />
                    <td colSpan={3}>
                      <div id={errorId} role="alert" className={styles.error}>
                        {error}
                      </div>
                    </td>
                  </tr>
                )}
              </tbody>
            );
          })}
        </table>
      )}
      <Stack direction="row" gap={1}>
        <Button
          icon="plus"
          variant="secondary"
          size="sm"
          onClick={() => update([...rows, { type: 'cpCode', text: '', touched: false }])}
        >
          Add CP code
        </Button>
        <Button
          icon="plus"
          variant="secondary"
          size="sm"
          onClick={() => update([...rows, { type: 'url', text: '', touched: false }])}
        >
          Add URL
        </Button>
      </Stack>
    </Stack>
  );
}

const getStyles = (theme: GrafanaTheme2) => ({
  table: css({
    width: '100%',
    maxWidth: 900,
    tableLayout: 'fixed',
    borderCollapse: 'collapse',
    'th, td': {
      padding: theme.spacing(0.5, 1, 0.5, 0),
      verticalAlign: 'middle',
      textAlign: 'left',
    },
    th: {
      fontWeight: theme.typography.fontWeightMedium,
      color: theme.colors.text.secondary,
      fontSize: theme.typography.bodySmall.fontSize,
      whiteSpace: 'nowrap',
    },
  }),
  type: css({ width: 150 }),
  delivery: css({ width: 270 }),
  remove: css({ width: 40 }),
  hidden: css({
    position: 'absolute',
    width: 1,
    height: 1,
    overflow: 'hidden',
    clipPath: 'inset(50%)',
  }),
  error: css({
    color: theme.colors.error.text,
    fontSize: theme.typography.bodySmall.fontSize,
  }),
});
