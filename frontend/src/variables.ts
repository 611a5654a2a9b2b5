import { CustomVariableSupport, type DataQueryRequest, type DataQueryResponse } from '@grafana/data';
import { from, map, type Observable } from 'rxjs';

import { VariableQueryEditor } from './components/VariableQueryEditor';
import type { DataSource } from './datasource';
import { normalizeVariableQuery } from './query';
import type { EStatsOptions, EStatsQuery, VariableQuery } from './types';

/**
 * Dashboard variables listing known targets or the status codes seen for one, answered in the
 * browser from the `/targets` and `/status-codes` resources: no backend query type is needed.
 */
export class EStatsVariableSupport extends CustomVariableSupport<
  DataSource,
  VariableQuery,
  EStatsQuery,
  EStatsOptions
> {
  editor = VariableQueryEditor;

  constructor(private readonly datasource: DataSource) {
    super();
  }

  query(request: DataQueryRequest<VariableQuery>): Observable<DataQueryResponse> {
    const query: VariableQuery = request.targets[0] ?? { refId: 'variable', kind: 'targets' };
    return from(this.datasource.variableValues(normalizeVariableQuery(query), request.scopedVars)).pipe(
      map((values) => ({ data: values }))
    );
  }
}
