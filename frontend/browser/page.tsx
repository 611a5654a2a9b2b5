/**
 * The page the browser tests drive: one of the three editors, mounted as Grafana mounts it, with
 * Grafana's theme and global styles, the template service and the `targets` resource mocked.
 * `?editor=config|query|annotation|variable&theme=dark|light&targets=ok|fail|slow&state=<json>`.
 * Every payload an editor emits is appended to `window.emitted`.
 */
import { createTheme, type DataSourceSettings, ThemeContext } from '@grafana/data';
import { setTemplateSrv } from '@grafana/runtime';
import { GlobalStyles } from '@grafana/ui';
import { StrictMode, useState } from 'react';
import { createRoot } from 'react-dom/client';

import { AnnotationQueryEditor } from '../src/components/AnnotationQueryEditor';
import { ConfigEditor } from '../src/components/ConfigEditor';
import { QueryEditor } from '../src/components/QueryEditor';
import { VariableQueryEditor } from '../src/components/VariableQueryEditor';
import { DataSource } from '../src/datasource';
import { fakeTemplateSrv, instanceSettings } from '../src/test/fixtures';
import type { EStatsOptions, EStatsQuery, EStatsSecureJsonData, KnownTarget, VariableQuery } from '../src/types';

declare global {
  interface Window {
    emitted: unknown[];
  }
}
window.emitted = [];

const params = new URLSearchParams(window.location.search);
const editor = params.get('editor') ?? 'config';
const theme = createTheme({ colors: { mode: params.get('theme') === 'light' ? 'light' : 'dark' } });
const state: unknown = JSON.parse(params.get('state') ?? 'null');

const TARGETS: KnownTarget[] = [
  {
    key: 'cp:1209788/STANDARD_TLS',
    target: { cpCode: 1209788, delivery: 'STANDARD_TLS' },
    label: 'cpCode 1209788 (STANDARD_TLS)',
    watched: true,
    samples: 12,
  },
  {
    key: 'cp:1209788/ENHANCED_TLS',
    target: { cpCode: 1209788, delivery: 'ENHANCED_TLS' },
    label: 'cpCode 1209788 (ENHANCED_TLS)',
    samples: 1,
  },
  {
    key: 'url:https://downloads.example-media-company.com/releases/2026/11/installer-full-x86_64.tar.gz/ENHANCED_TLS',
    target: {
      url: 'https://downloads.example-media-company.com/releases/2026/11/installer-full-x86_64.tar.gz',
      delivery: 'ENHANCED_TLS',
    },
    label: 'https://downloads.example-media-company.com/releases/2026/11/installer-full-x86_64.tar.gz (ENHANCED_TLS)',
    watched: true,
    samples: 3,
  },
];

setTemplateSrv(
  fakeTemplateSrv({ target: ['1209788', '555'], cpcode: '1209788', status: '5xx', url: 'https://www.example.com/' })
);

const datasource = new DataSource(
  instanceSettings({ watch: [{ cpCode: 1209788, delivery: 'STANDARD_TLS' }, { cpCode: 1209789 }] })
);
datasource.getResource = async <T,>(path: string): Promise<T> => {
  const mode = params.get('targets') ?? 'ok';
  if (path !== 'targets') {
    return { target: path, statusCodes: [200, 404, 503] } as T;
  }
  if (mode === 'slow') {
    return new Promise<T>(() => {});
  }
  if (mode === 'fail') {
    await new Promise((resolve) => setTimeout(resolve, 50));
    throw Object.assign(new Error('Request failed'), {
      status: 502,
      data: { message: 'plugin unavailable: the backend process is not running' },
    });
  }
  return { targets: TARGETS } as T;
};

type Settings = DataSourceSettings<EStatsOptions, EStatsSecureJsonData>;

// Still required by the settings type, though deprecated: kept out of the typed literal below.
const legacyFields = { database: '' };

function settings(patch: Partial<Settings> | null): Settings {
  return {
    ...legacyFields,
    id: 1,
    uid: 'estats-uid',
    orgId: 1,
    name: 'Akamai eStats',
    typeLogoUrl: '',
    type: 'akamai-estats-datasource',
    typeName: 'Akamai eStats',
    access: 'proxy',
    url: '',
    user: '',
    basicAuth: false,
    basicAuthUser: '',
    isDefault: false,
    withCredentials: false,
    readOnly: false,
    jsonData: {},
    secureJsonFields: {},
    ...patch,
  };
}

function Config() {
  const [options, setOptions] = useState(settings(state as Partial<Settings> | null));
  return (
    <ConfigEditor
      options={options}
      onOptionsChange={(next) => {
        window.emitted.push(next);
        setOptions(next);
      }}
    />
  );
}

function Query() {
  const [query, setQuery] = useState<EStatsQuery>((state as EStatsQuery | null) ?? { refId: 'A' });
  return (
    <QueryEditor
      datasource={datasource}
      query={query}
      onChange={(next) => {
        window.emitted.push(next);
        setQuery(next);
      }}
      onRunQuery={() => window.emitted.push('run')}
    />
  );
}

function Annotation() {
  const [query, setQuery] = useState<EStatsQuery>((state as EStatsQuery | null) ?? { refId: 'Anno' });
  return (
    <AnnotationQueryEditor
      datasource={datasource}
      query={query}
      onChange={(next) => {
        window.emitted.push(next);
        setQuery(next);
      }}
      onRunQuery={() => window.emitted.push('run')}
    />
  );
}

function Variable() {
  const [query, setQuery] = useState<VariableQuery>((state as VariableQuery | null) ?? { refId: 'v', kind: 'targets' });
  return (
    <VariableQueryEditor
      datasource={datasource}
      query={query}
      onChange={(next) => {
        window.emitted.push(next);
        setQuery(next);
      }}
      onRunQuery={() => {}}
    />
  );
}

const root = document.getElementById('root');
if (root) {
  createRoot(root).render(
    <StrictMode>
      <ThemeContext.Provider value={theme}>
        <GlobalStyles />
        <main id="editor" style={{ padding: theme.spacing(2), background: theme.colors.background.primary }}>
          {editor === 'query' ? (
            <Query />
          ) : editor === 'annotation' ? (
            <Annotation />
          ) : editor === 'variable' ? (
            <Variable />
          ) : (
            <Config />
          )}
        </main>
      </ThemeContext.Provider>
    </StrictMode>
  );
}
