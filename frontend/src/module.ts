import { DataSourcePlugin } from '@grafana/data';

import { ConfigEditor } from './components/ConfigEditor';
import { QueryEditor } from './components/QueryEditor';
import { DataSource } from './datasource';
import type { EStatsOptions, EStatsQuery, EStatsSecureJsonData } from './types';

export const plugin = new DataSourcePlugin<DataSource, EStatsQuery, EStatsOptions, EStatsSecureJsonData>(DataSource)
  .setConfigEditor(ConfigEditor)
  .setQueryEditor(QueryEditor);
