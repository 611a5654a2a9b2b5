import { useEffect, useState } from 'react';

import type { DataSource } from '../datasource';
import type { KnownTarget } from '../types';

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
  const parts = [target.watched ? 'watched' : 'polled on demand'];
  if (typeof target.samples === 'number') {
    parts.push(`${target.samples} ${target.samples === 1 ? 'sample' : 'samples'}`);
  }
  if (target.lastError) {
    parts.push(`last error: ${target.lastError}`);
  }
  return parts.join(' · ');
}
