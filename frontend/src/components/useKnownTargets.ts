import { getTemplateSrv } from '@grafana/runtime';
import type { ComboboxOption } from '@grafana/ui';
import { useEffect, useState } from 'react';

import type { DataSource } from '../datasource';
import { ALL_WATCHED, isAbsoluteHttpUrl, isDigits } from '../query';
import type { KnownTarget, TargetType } from '../types';

export interface DashboardVariable {
  name: string;
  /** The current value (the first one of a multi-value variable), as the query would get it. */
  value: string;
}

/** The dashboard's variables with their current values; none outside a dashboard. */
export function dashboardVariables(): DashboardVariable[] {
  try {
    const templateSrv = getTemplateSrv();
    return templateSrv.getVariables().map((v) => ({
      name: v.name,
      value: templateSrv.replace(`$${v.name}`, undefined, (value: unknown) =>
        Array.isArray(value) ? String(value[0] ?? '') : String(value ?? '')
      ),
    }));
  } catch {
    return [];
  }
}

/**
 * Whether a variable's value can stand for a target of this type: a CP code holds digits only; `*`
 * (an "All" variable's custom all value) stands for every watched target of either type.
 */
export function fitsTargetType(value: string, type: TargetType): boolean {
  if (value.trim() === ALL_WATCHED) {
    return true;
  }
  return type === 'url' ? isAbsoluteHttpUrl(value) : isDigits(value);
}

/** Whether a variable can stand for a target of any type, or hold a target key. */
export function isTargetVariable(value: string): boolean {
  return isDigits(value) || isAbsoluteHttpUrl(value) || /^(cp|url):/.test(value);
}

export interface KnownTargetsState {
  targets: KnownTarget[];
  loading: boolean;
  error?: string;
}

function errorMessage(error: unknown): string {
  if (error && typeof error === 'object') {
    const withData = error as { data?: { message?: unknown }; message?: unknown; statusText?: unknown };
    for (const candidate of [withData.data?.message, withData.message, withData.statusText]) {
      if (typeof candidate === 'string' && candidate !== '') {
        return candidate;
      }
    }
  }
  return String(error);
}

/** Loads the `/targets` resource once per data source for the editors' dropdowns. */
export function useKnownTargets(datasource: DataSource): KnownTargetsState {
  const [state, setState] = useState<KnownTargetsState>({ targets: [], loading: true });
  useEffect(() => {
    let cancelled = false;
    datasource.getTargets().then(
      (targets) => {
        if (!cancelled) {
          setState({ targets, loading: false });
        }
      },
      (error: unknown) => {
        if (!cancelled) {
          setState({ targets: [], loading: false, error: errorMessage(error) });
        }
      }
    );
    return () => {
      cancelled = true;
    };
  }, [datasource]);
  return state;
}

/** One line about a target's poller for dropdown descriptions. */
export function describeTarget(target: KnownTarget): string {
  // The delivery network comes first: a long URL label is cut at its end, and so would it be.
  const parts = [target.target.delivery ?? 'default delivery', target.watched ? 'watched' : 'polled on demand'];
  if (typeof target.samples === 'number') {
    parts.push(`${target.samples} ${target.samples === 1 ? 'sample' : 'samples'}`);
  }
  if (target.lastError) {
    parts.push(`last error: ${target.lastError}`);
  }
  return parts.join(' · ');
}

/**
 * The options for a typed text: matching known targets and variables first, so `$tar` + Enter picks
 * `$target`; the typed text itself last, described as `useTyped` (e.g. "Use this CP code").
 */
export function targetChoices(
  input: string,
  known: Array<ComboboxOption<string>>,
  useTyped: string
): Array<ComboboxOption<string>> {
  const text = input.trim();
  const needle = text.toLowerCase();
  const matches = known.filter(
    (o) =>
      needle === '' || (o.label ?? o.value).toLowerCase().includes(needle) || o.value.toLowerCase().includes(needle)
  );
  matches.sort((a, b) => {
    const aStarts = (a.label ?? a.value).toLowerCase().startsWith(needle) ? 0 : 1;
    const bStarts = (b.label ?? b.value).toLowerCase().startsWith(needle) ? 0 : 1;
    return aStarts - bStarts;
  });
  const exact = known.some((o) => o.value === text || o.label === text);
  if (text !== '' && !exact) {
    matches.push({ value: text, label: text, description: useTyped });
  }
  return matches;
}
